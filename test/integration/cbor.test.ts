import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { toPem } from '../../src/pki/pem.js'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import type { createTestPki } from '../support/pki.js'

/** CborIssued is an `issued` reply as CBOR carries it. */
interface CborIssued {
  status: 'issued'
  requestId?: string
  deviceId?: string
  certificate: Uint8Array[]
  caCertificates: Uint8Array[]
  privateKey?: Uint8Array
  serialNumber: string
  notBefore: number
  notAfter: number
}

const asCbor = (reply: Reply | Record<string, unknown> | undefined): CborIssued => {
  expect(reply).toMatchObject({ status: 'issued' })
  return reply as unknown as CborIssued
}

/** derCsr makes a key and CSR with openssl; the CSR as DER bytes, as a CBOR device sends it. */
async function derCsr(cn: string) {
  const { csr, keyFile } = await opensslCsr(`/CN=${cn}`)
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64')
  return { der, pem: csr, publicKey: createPublicKey(await readFile(keyFile, 'utf8')) }
}

/** checkCredentials: DER chain and CA certificates; the certificate is the identity's and verifies with the CA. */
function checkCredentials(b: TestBridge, reply: CborIssued, identity: string): X509Certificate {
  expect(reply.certificate.every((d) => d instanceof Uint8Array)).toBe(true)
  const [leaf] = reply.certificate.map((d) => new X509Certificate(Buffer.from(d)))
  const cas = reply.caCertificates.map((d) => new X509Certificate(Buffer.from(d)))
  if (!leaf) throw new Error('no certificate')
  expect(leaf.subject).toBe(`CN=${identity}`)
  expect(cas.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))).toBe(true)
  expect(leaf.serialNumber.toLowerCase()).toBe(reply.serialNumber)
  expect(reply.notAfter).toBe(Date.parse(leaf.validTo) / 1000)
  expect(reply.notBefore).toBe(Date.parse(leaf.validFrom) / 1000)
  void b
  return leaf
}

let bridge: TestBridge
const bridges: TestBridge[] = []

async function started(sets: string[] = [], pki?: Awaited<ReturnType<typeof createTestPki>>) {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

beforeAll(async () => {
  const policy = await writePolicy(`
gateways:
  - match: gateway-001
    devices: { patterns: ["{gateway}-sensor-*"] }
`)
  bridge = await started([`gateways.policyFile=${policy}`]) // otherwise the product's defaults
})

afterAll(async () => {
  for (const b of bridges) await b.stop()
})

describe('CBOR on registration/request/cbor, replies on registration/<identity>/reply/cbor', () => {
  it('server-key: the chain and CA certificates as DER byte strings, the key as PKCS#8 DER, times as seconds', async () => {
    const device = await connectDevice(bridge, 'device-001', { format: 'cbor' })
    await device.send({ requestId: 'cbor-sk' })
    const reply = asCbor(await device.nextReply())
    expect(reply.requestId).toBe('cbor-sk')
    const leaf = checkCredentials(bridge, reply, 'device-001')
    const key = createPrivateKey({
      key: Buffer.from(reply.privateKey as Uint8Array),
      format: 'der',
      type: 'pkcs8',
    })
    expect(leaf.checkPrivateKey(key)).toBe(true)
    // a retry of the same request (QoS 1 redelivery, or the device again) gets the same answer, in CBOR
    await device.send({ requestId: 'cbor-sk', keyAlgorithm: 'ECDSA-P256' })
    expect(asCbor(await device.nextReply()).serialNumber).toBe(reply.serialNumber)
    await device.end()
  })

  it('CSR mode: a DER csr; the same request in JSON (PEM csr) is the same request and gets the same certificate', async () => {
    const csr = await derCsr('device-002')
    const cbor = await connectDevice(bridge, 'device-002', { format: 'cbor' })
    await cbor.send({ requestId: 'cbor-csr', csr: csr.der })
    const reply = asCbor(await cbor.nextReply())
    expect(reply.privateKey).toBeUndefined()
    const leaf = checkCredentials(bridge, reply, 'device-002')
    expect(leaf.publicKey.export({ format: 'der', type: 'spki' })).toEqual(
      csr.publicKey.export({ format: 'der', type: 'spki' }),
    )
    const json = await connectDevice(bridge, 'device-002')
    await json.send({ requestId: 'cbor-csr', csr: csr.pem })
    const again = await json.nextReply()
    expect(again).toMatchObject({ status: 'issued', serialNumber: reply.serialNumber })
    expect(again.status === 'issued' && again.certificate).toContain('-----BEGIN CERTIFICATE-----')
    // and back: the CBOR retry is the same request again
    await cbor.send({ requestId: 'cbor-csr', csr: csr.der })
    expect(asCbor(await cbor.nextReply()).serialNumber).toBe(reply.serialNumber)
    // its answer went to the topic of its format only: the JSON device heard one reply, the CBOR one two
    expect(json.replies).toHaveLength(1)
    expect(cbor.replies).toHaveLength(2)
    await Promise.all([cbor.end(), json.end()])
  })

  it('a rejection carries the error code as in JSON', async () => {
    const device = await connectDevice(bridge, 'device-003', { format: 'cbor' })
    await device.send({ requestId: 'bad', keyAlgorithm: 'RSA-1024' })
    expect(await device.nextReply()).toEqual({
      version: 1,
      status: 'rejected',
      requestId: 'bad',
      error: { code: 'KEY_NOT_ALLOWED', message: expect.any(String), retryable: false },
    })
    await device.end()
  })

  it('a gateway batch: one CBOR reply per device (DER credentials), then complete; a retry replays them', async () => {
    const csr = await derCsr('gateway-001-sensor-2')
    const gateway = await connectGateway(bridge, 'gateway-001', 'cbor')
    const body = {
      requestId: 'batch-cbor',
      devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'gateway-001-sensor-2', csr: csr.der }],
    }
    const replies = await gateway.batch(body)
    expect(replies.at(-1)).toEqual({
      version: 1,
      extension: 'gateway/1',
      requestId: 'batch-cbor',
      status: 'complete',
      issued: 2,
      rejected: 0,
    })
    const devices = byDevice(replies)
    const one = asCbor(devices.get('gateway-001-sensor-1'))
    const two = asCbor(devices.get('gateway-001-sensor-2'))
    expect(one.privateKey).toBeInstanceOf(Uint8Array)
    expect(two.privateKey).toBeUndefined()
    checkCredentials(bridge, one, 'gateway-001-sensor-1')
    checkCredentials(bridge, two, 'gateway-001-sensor-2')
    const again = byDevice(await gateway.batch(body))
    expect(asCbor(again.get('gateway-001-sensor-1')).serialNumber).toBe(one.serialNumber)
    expect(asCbor(again.get('gateway-001-sensor-2')).serialNumber).toBe(two.serialNumber)
    // a batch of the wrong shape is refused whole, in CBOR
    const dup = await gateway.batch({
      requestId: 'dup',
      devices: [{ deviceId: 'gateway-001-sensor-3' }, { deviceId: 'gateway-001-sensor-3' }],
    })
    expect(dup).toEqual([
      expect.objectContaining({
        extension: 'gateway/1',
        requestId: 'dup',
        status: 'rejected',
        error: expect.objectContaining({ code: 'MALFORMED_REQUEST' }),
      }),
    ])
    await gateway.end()
  })
})

describe('CBOR renewals and offline delivery', () => {
  it('a renewal in CBOR: not due under the defaults (told when), renewed where the window is open', async () => {
    const caPem = await readFile(bridge.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
    const renewal = async (b: TestBridge, id: string) => {
      const first = await connectDevice(b, id, { format: 'cbor' })
      await first.send({ requestId: `first-${id}` })
      const issued = asCbor(await first.nextReply())
      await first.end()
      const tls = {
        certPem: toPem(Buffer.from(issued.certificate[0] as Uint8Array), 'CERTIFICATE'),
        keyPem: toPem(Buffer.from(issued.privateKey as Uint8Array), 'PRIVATE KEY'),
        caPem,
      }
      const operational = await connectDevice(b, id, { format: 'cbor', tls })
      await operational.send({ requestId: `renew-${id}`, csr: (await derCsr(id)).der })
      const reply = await operational.nextReply()
      await operational.end()
      return { issued, reply }
    }
    const early = await renewal(bridge, 'device-004')
    expect(early.reply).toMatchObject({
      status: 'rejected',
      requestId: 'renew-device-004',
      error: { code: 'RENEWAL_NOT_DUE', retryable: true, retryAfterSeconds: expect.any(Number) },
    })
    const open = await started(['lifecycle.renewal.windowFraction=1'], bridge.pki)
    const due = await renewal(open, 'device-005')
    const renewed = asCbor(due.reply)
    expect(renewed.serialNumber).not.toBe(due.issued.serialNumber)
    checkCredentials(open, renewed, 'device-005')
    const audit = (await open.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(audit.find((a) => a.serialNumber === renewed.serialNumber)).toMatchObject({
      event: 'renewed',
      supersedes: due.issued.serialNumber,
    })
  })

  it('a persistent session gets its CBOR pending notice, and its CBOR answer on reconnect', async () => {
    const b = await started(['registration.pendingAfterMs=1'])
    await b.pki.makeDevice('device-006')
    const keeper = { clientId: 'cbor-keeper', clean: false }
    const first = await connectDevice(b, 'device-006', { format: 'cbor', session: keeper })
    const issued = b.waitForLog('certificate issued')
    await first.send({ requestId: 'slow', keyAlgorithm: 'RSA-4096' })
    expect(await first.nextReply({ includePending: true })).toEqual({
      version: 1,
      status: 'pending',
      requestId: 'slow',
    })
    await first.end() // the link drops while the key is being made
    await issued
    const again = await connectDevice(b, 'device-006', { format: 'cbor', session: keeper, subscribe: false })
    const reply = asCbor(await again.nextReply())
    expect(reply.requestId).toBe('slow')
    expect(reply.privateKey).toBeInstanceOf(Uint8Array)
    await again.end()
  })
})
