import { createPrivateKey, X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BundledRegistration, register, renew } from '../../src/client/index.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, mosquittoArgs, tlsFor } from '../support/device.js'
import { bundleOf, opened, opensslPkcs12, passwordsFound } from '../support/pkcs12.js'
import { start } from '../support/process.js'
import { run } from '../support/tools.js'

// PKCS#12 bundles end to end with the product's defaults (embedded CA, server-key mode): a device's request, its
// replays, a renewal, bad passwords, foreign clients; then no password anywhere the bridge writes. Gateway batch
// entries: pkcs12-gateway.test.ts.

let bridge: TestBridge
/** Every password a test sent: none may be found in a log line or a file of the state directory. */
const passwords: string[] = []
const pw = (tag: string): string => {
  const password = `pässword-${tag}-${passwords.length}-€`
  passwords.push(password)
  return password
}

beforeAll(async () => {
  bridge = await startTestBridge()
  for (const id of ['device-006', 'device-007', 'device-008', 'spender-1']) await bridge.pki.makeDevice(id)
  // one identity per bad request: an invalid request spends a rate-limit token like any other
  for (let i = 0; i < 9; i++) await bridge.pki.makeDevice(`bad-${i}`)
})

afterAll(async () => {
  await bridge?.stop()
})

describe('a device asks for a PKCS#12 bundle (MQTT.js)', () => {
  it('gets the bundle instead of privateKey; a retry with another password is the same answer, wrapped anew', async () => {
    const device = await connectDevice(bridge, 'device-001')
    const first = pw('first')
    await device.send({ requestId: 'b-1', pkcs12: { password: first } })
    const reply = (await device.nextReply()) as IssuedReply
    const bundle = bundleOf(reply)
    const { keyPem } = await opened(bundle, first, reply.certificate)
    expect((await opened(bundle, first, reply.certificate)).python.friendlyName).toBe('device-001')

    // the retry (from the reply cache) with another password: the same certificate and key, only its password opens it
    const second = pw('second')
    await device.send({ requestId: 'b-1', pkcs12: { password: second } })
    const replayed = (await device.nextReply()) as IssuedReply
    expect(replayed.serialNumber).toBe(reply.serialNumber)
    const again = await opened(bundleOf(replayed), second, reply.certificate)
    expect(again.keyPem).toBe(keyPem)
    expect((await opensslPkcs12(bundleOf(replayed), first)).code).not.toBe(0)

    // the format is not part of the request: the same request without pkcs12 gets the same key as PEM
    await device.send({ requestId: 'b-1' })
    const plain = (await device.nextReply()) as IssuedReply
    expect(plain.serialNumber).toBe(reply.serialNumber)
    expect(plain.pkcs12).toBeUndefined()
    expect(createPrivateKey(plain.privateKey ?? '').export({ type: 'pkcs8', format: 'pem' })).toBe(keyPem)
    await device.end()
  })

  it.each(['ECDSA-P384', 'Ed25519', 'RSA-2048'] as const)(
    '%s keys come in bundles too',
    async (keyAlgorithm) => {
      const id = { 'ECDSA-P384': 'device-006', Ed25519: 'device-007', 'RSA-2048': 'device-008' }[keyAlgorithm]
      const password = pw(keyAlgorithm)
      const registration = await register({
        url: bridge.url,
        ...tlsFor(bridge, bridge.pki.device(id)),
        keyAlgorithm,
        pkcs12Password: password,
      })
      const { keyPem } = await opened(registration.pkcs12, password, registration.certificatePem)
      expect(createPrivateKey(keyPem).asymmetricKeyType).toBe(
        keyAlgorithm === 'Ed25519' ? 'ed25519' : keyAlgorithm.startsWith('RSA') ? 'rsa' : 'ec',
      )
    },
  )

  it('a replay in a bundle spends a rate-limit token (each is a new bundle); a plain replay still spends none', async () => {
    const device = await connectDevice(bridge, 'spender-1')
    const codes: string[] = []
    // the default limit: a burst of 5 (the request itself spends one, each bundle replay one more)
    for (let i = 0; i < 7; i++) {
      await device.send({ requestId: 'spender', pkcs12: { password: pw('spend') } })
      const reply = await device.nextReply()
      codes.push(reply.status === 'rejected' ? reply.error.code : reply.status)
    }
    expect(codes).toEqual(['issued', 'issued', 'issued', 'issued', 'issued', 'RATE_LIMITED', 'RATE_LIMITED'])
    await device.send({ requestId: 'spender' })
    expect((await device.nextReply()).status).toBe('issued')
    await device.end()
  })

  it('a renewal asks for a bundle: the new key comes in it', async () => {
    const b = await startTestBridge(['lifecycle.renewal.windowFraction=1'])
    try {
      const password = pw('renew')
      const first = await register({ url: b.url, ...tlsFor(b, b.pki.device('device-002')) })
      const renewed: BundledRegistration = await renew({
        url: b.url,
        certPem: first.certificatePem,
        keyPem: first.privateKeyPem,
        caPem: first.caCertificatesPem,
        pkcs12Password: password,
      })
      expect(renewed.serialNumber).not.toBe(first.serialNumber)
      const o = await opensslPkcs12(renewed.pkcs12, password)
      expect(o.code, o.info).toBe(0)
      expect(
        new X509Certificate(renewed.certificatePem).checkPrivateKey(
          createPrivateKey(
            /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(o.pem)?.[0] ?? '',
          ),
        ),
      ).toBe(true)
    } finally {
      await b.stop()
    }
  })
})

describe('bad requests for a bundle', () => {
  const cases: [string, unknown, string][] = [
    ['no password', { pkcs12: {} }, 'MALFORMED_REQUEST'],
    ['an empty password', { pkcs12: { password: '' } }, 'MALFORMED_REQUEST'],
    ['7 characters', { pkcs12: { password: 'short-7' } }, 'MALFORMED_REQUEST'],
    ['129 characters', { pkcs12: { password: 'p'.repeat(129) } }, 'MALFORMED_REQUEST'],
    ['a control character', { pkcs12: { password: 'tab\there-ok' } }, 'MALFORMED_REQUEST'],
    ['a number', { pkcs12: { password: 12345678 } }, 'MALFORMED_REQUEST'],
    ['a string for pkcs12', { pkcs12: 'secret-password' }, 'MALFORMED_REQUEST'],
    [
      'a field beside the password',
      { pkcs12: { password: 'long-enough-1', iterations: 1 } },
      'UNKNOWN_FIELD',
    ],
    ['with a CSR', { pkcs12: { password: 'long-enough-2' } }, 'MALFORMED_REQUEST'],
  ]
  it.each(cases)('%s is refused, and the message never shows the password', async (name, body, code) => {
    const id = `bad-${cases.findIndex((c) => c[0] === name)}`
    const device = await connectDevice(bridge, id)
    const csr = name === 'with a CSR' ? (await opensslCsr(`/CN=${id}`)).csr : undefined
    await device.send({ requestId: 'bad', ...(csr ? { csr } : {}), ...(body as object) })
    const reply = await device.nextReply()
    expect(reply).toMatchObject({ status: 'rejected', requestId: 'bad', error: { code, retryable: false } })
    const password = (body as { pkcs12?: { password?: unknown } }).pkcs12?.password
    if (typeof password === 'string' && password.length > 0) {
      expect(JSON.stringify(reply)).not.toContain(password)
      passwords.push(password) // nor in the logs (searched below)
    }
    await device.end()
  })

  it('the bridge keeps serving: the same device then gets its bundle', async () => {
    const password = pw('after-bad')
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('device-003')),
      pkcs12Password: password,
    })
    await opened(registration.pkcs12, password, registration.certificatePem)
  })
})

describe('foreign clients: mosquitto_pub and mosquitto_sub', () => {
  it('a bundle asked for with mosquitto_pub arrives on mosquitto_sub and opens with openssl and Python', async () => {
    const auth = mosquittoArgs(bridge, 'device-004')
    const sub = start('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...auth,
      '-d',
      '-q',
      '1',
      '-t',
      'registration/device-004/reply',
      '-C',
      '1',
      '-W',
      '20',
    ])
    await sub.waitFor(/received SUBACK/)
    const password = pw('mosquitto')
    const body = JSON.stringify({ requestId: 'm-1', pkcs12: { password } })
    const pub = await run('mosquitto_pub', [...auth, '-q', '1', '-t', 'registration/request', '-m', body])
    expect(pub.code).toBe(0)
    expect(await sub.exited).toBe(0)
    const line =
      sub
        .output()
        .split('\n')
        .find((l) => l.startsWith('{')) ?? ''
    const reply = JSON.parse(line) as IssuedReply
    await opened(bundleOf(reply), password, reply.certificate)
  })
})

describe('no password anywhere the bridge writes', () => {
  it('not in a log line, the registry, the audit log or any file of the state directory', async () => {
    expect(passwords.length).toBeGreaterThan(12)
    expect(await passwordsFound(bridge, passwords)).toEqual([])
  })
})
