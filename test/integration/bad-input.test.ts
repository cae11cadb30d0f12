import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, type TestDevice } from '../support/device.js'

let bridge: TestBridge
let device: TestDevice
let _work: string

beforeAll(async () => {
  bridge = await startTestBridge(['registration.rateLimit.burst=1000', 'limits.maxRequestBytes=4096'])
  device = await connectDevice(bridge, 'device-001')
  _work = await mkdtemp(join(tmpdir(), 'mrb-bad-'))
})

afterAll(async () => {
  await device?.end()
  await bridge?.stop()
})

/** csrFor makes an openssl CSR for `cn` and returns its PEM. */
const csrFor = async (cn: string, key: string[], extra: string[] = []): Promise<string> =>
  (await opensslCsr(`/CN=${cn}`, key, extra)).csr

const p256 = ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']

/** forge flips one byte of the CSR's signature, keeping its structure readable. */
function forge(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')
  der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0x01
  return der.toString('base64')
}

async function expectRejected(payload: string | Buffer | object, code: string): Promise<void> {
  const before = (await bridge.auditLines()).length
  await device.send(payload)
  const reply: Reply = await device.nextReply()
  expect(reply.status).toBe('rejected')
  if (reply.status !== 'rejected') return
  expect(reply.error.code).toBe(code)
  expect(reply.error.message.length).toBeGreaterThan(0)
  expect(typeof reply.error.retryable).toBe('boolean')
  expect((await bridge.auditLines()).length).toBe(before) // nothing was issued
}

describe('bad input gets rejected with its documented code, and nothing is issued', () => {
  it('not JSON', () => expectRejected('hello', 'MALFORMED_REQUEST'))
  it('invalid UTF-8', () => expectRejected(Buffer.from([0x7b, 0xff, 0x7d]), 'MALFORMED_REQUEST'))
  it('a JSON array', () => expectRejected('[]', 'MALFORMED_REQUEST'))
  it('JSON null', () => expectRejected('null', 'MALFORMED_REQUEST'))
  it('an empty payload', () => expectRejected('', 'MALFORMED_REQUEST'))
  it('requestId of the wrong type', () => expectRejected({ requestId: 42 }, 'MALFORMED_REQUEST'))
  it('csr of the wrong type', () => expectRejected({ csr: { pem: 'x' } }, 'MALFORMED_REQUEST'))
  it('keyAlgorithm of the wrong type', () => expectRejected({ keyAlgorithm: 5 }, 'MALFORMED_REQUEST'))
  it('version of the wrong type', () => expectRejected({ version: '1' }, 'MALFORMED_REQUEST'))
  it('csr and keyAlgorithm together', async () =>
    expectRejected(
      { csr: await csrFor('device-001', p256), keyAlgorithm: 'ECDSA-P256' },
      'MALFORMED_REQUEST',
    ))
  it('an unknown field', () => expectRejected({ deviceId: 'device-002' }, 'UNKNOWN_FIELD'))
  it('an unsupported protocol version', () => expectRejected({ version: 2 }, 'UNSUPPORTED_VERSION'))
  it('an oversized payload', () => expectRejected({ csr: 'A'.repeat(5000) }, 'REQUEST_TOO_LARGE'))
  it('an unsupported key algorithm', () => expectRejected({ keyAlgorithm: 'DSA-1024' }, 'KEY_NOT_ALLOWED'))
  it('an unreadable CSR', () => expectRejected({ csr: 'not a csr' }, 'CSR_UNREADABLE'))
  it('base64 that is not a CSR', () =>
    expectRejected({ csr: Buffer.from('hello world').toString('base64') }, 'CSR_UNREADABLE'))
  it('a PEM block of the wrong kind', () =>
    expectRejected(
      { csr: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
      'CSR_UNREADABLE',
    ))
  it('a forged CSR signature', async () =>
    expectRejected({ csr: forge(await csrFor('device-001', p256)) }, 'CSR_SIGNATURE_INVALID'))
  it('a CSR naming another identity', async () =>
    expectRejected({ csr: await csrFor('device-002', p256) }, 'CSR_IDENTITY_MISMATCH'))
  it("a CSR asking for another device's DNS name", async () =>
    expectRejected(
      { csr: await csrFor('device-001', p256, ['-addext', 'subjectAltName=DNS:device-002']) },
      'CSR_IDENTITY_MISMATCH',
    ))
  it('a CSR asking for an IP address SAN', async () =>
    expectRejected(
      { csr: await csrFor('device-001', p256, ['-addext', 'subjectAltName=IP:10.0.0.1']) },
      'CSR_IDENTITY_MISMATCH',
    ))
  it('a CSR asking to be a CA', async () =>
    expectRejected(
      { csr: await csrFor('device-001', p256, ['-addext', 'basicConstraints=critical,CA:TRUE']) },
      'EXTENSION_NOT_ALLOWED',
    ))
  it('a CSR asking for keyCertSign', async () =>
    expectRejected(
      { csr: await csrFor('device-001', p256, ['-addext', 'keyUsage=keyCertSign']) },
      'EXTENSION_NOT_ALLOWED',
    ))
  it('an RSA-1024 CSR', async () =>
    expectRejected({ csr: await csrFor('device-001', ['rsa:1024']) }, 'KEY_NOT_ALLOWED'))
  it('a secp256k1 CSR', async () =>
    expectRejected(
      { csr: await csrFor('device-001', ['ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']) },
      'KEY_NOT_ALLOWED',
    ))

  it('echoes a valid requestId in a rejection', async () => {
    await device.send({ requestId: 'r-echo', keyAlgorithm: 'nope' })
    expect(await device.nextReply()).toMatchObject({ status: 'rejected', requestId: 'r-echo' })
  })

  it('keeps serving: after all of that, the same device and another one register', async () => {
    await device.send({ requestId: 'after-bad-input' })
    expect((await device.nextReply()).status).toBe('issued')
    const other = await connectDevice(bridge, 'device-002')
    await other.send({})
    expect((await other.nextReply()).status).toBe('issued')
    await other.end()
  })
})
