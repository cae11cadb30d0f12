import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BundledRegistration, register, renew } from '../../src/client/index.js'
import { registerDevices } from '../../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply, Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import { opensslPkcs12, pythonPkcs12 } from '../support/pkcs12.js'
import { start } from '../support/process.js'
import { run } from '../support/tools.js'

// PKCS#12 bundles end to end with the product's defaults (embedded CA, server-key mode): a device's request, its
// replays, a renewal, a gateway's batch entries, foreign clients; then no password anywhere the bridge writes.

let bridge: TestBridge
/** Every password a test sent: none may be found in a log line or a file of the state directory. */
const passwords: string[] = []
const pw = (tag: string): string => {
  const password = `pässword-${tag}-${passwords.length}-€`
  passwords.push(password)
  return password
}

beforeAll(async () => {
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([`gateways.policyFile=${policy}`])
  for (const id of ['device-006', 'device-007', 'device-008']) await bridge.pki.makeDevice(id)
  // one identity per bad request: an invalid request spends a rate-limit token like any other
  for (let i = 0; i < 9; i++) await bridge.pki.makeDevice(`bad-${i}`)
})

afterAll(async () => {
  await bridge?.stop()
})

/** opened reads a bundle with both readers and checks it holds the key of `certificate`, with its chain. */
async function opened(bundle: Buffer, password: string, certificate: string) {
  const o = await opensslPkcs12(bundle, password)
  expect(o.code, o.info).toBe(0)
  expect(o.info).toContain('Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256')
  expect(o.info).toContain('MAC: sha256, Iteration 2048')
  const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(o.pem)?.[0] ?? ''
  expect(new X509Certificate(certificate).checkPrivateKey(createPrivateKey(keyPem))).toBe(true)
  const p = await pythonPkcs12(bundle, password)
  expect(p).toMatchObject({ ok: true, keyMatches: true })
  // the chain: the certificate, then the issuing CA (the bridge's own CA, from caCertificates)
  expect(p.additional).toEqual(['CN=Development Issuing CA,O=mqtt-registration-bridge development'])
  return { keyPem, python: p }
}

const bundleOf = (reply: Reply): Buffer => {
  if (reply.status !== 'issued') throw new Error(`not issued: ${JSON.stringify(reply)}`)
  expect(reply.privateKey).toBeUndefined()
  return Buffer.from(reply.pkcs12 ?? '', 'base64')
}

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

  it('a renewal asks for a bundle: the new key comes in it, and the bundle connects to the bridge again', async () => {
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
    if (typeof password === 'string' && password.length > 0)
      expect(JSON.stringify(reply)).not.toContain(password)
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

describe('gateway batches', () => {
  it('a batch entry may ask for a bundle; CSR and PEM entries beside it are unchanged; a retry is rewrapped', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const [a, b] = [pw('sensor-a'), pw('sensor-b')]
    const csr = (await opensslCsr('/CN=gateway-001-sensor-3')).csr
    const devices = [
      { deviceId: 'gateway-001-sensor-1', pkcs12: { password: a } },
      { deviceId: 'gateway-001-sensor-2' },
      { deviceId: 'gateway-001-sensor-3', csr },
    ]
    const replies = byDevice(await gateway.batch({ requestId: 'gb-1', devices }))
    const one = replies.get('gateway-001-sensor-1') as unknown as IssuedReply
    await opened(bundleOf({ ...one, status: 'issued' }), a, one.certificate)
    expect(replies.get('gateway-001-sensor-2')?.privateKey).toMatch(/BEGIN PRIVATE KEY/)
    expect(replies.get('gateway-001-sensor-3')).toMatchObject({ status: 'issued' })
    expect(replies.get('gateway-001-sensor-3')?.pkcs12).toBeUndefined()

    // the same batch again with another password: the same certificate, in a bundle only the new password opens
    const retry = byDevice(
      await gateway.batch({
        requestId: 'gb-1',
        devices: [{ ...devices[0], pkcs12: { password: b } }, ...devices.slice(1)],
      }),
    )
    const again = retry.get('gateway-001-sensor-1') as unknown as IssuedReply
    expect(again.serialNumber).toBe(one.serialNumber)
    await opened(bundleOf({ ...again, status: 'issued' }), b, one.certificate)
    await gateway.end()
  })

  it('a bad password or a bundle with a CSR refuses the whole batch; nothing is issued', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const csr = (await opensslCsr('/CN=gateway-001-sensor-5')).csr
    for (const entry of [{ pkcs12: { password: 'short' } }, { csr, pkcs12: { password: 'long-enough-3' } }]) {
      const replies = await gateway.batch({
        requestId: 'gb-bad',
        devices: [{ deviceId: 'gateway-001-sensor-4' }, { deviceId: 'gateway-001-sensor-5', ...entry }],
      })
      expect(replies).toEqual([
        expect.objectContaining({
          status: 'rejected',
          error: expect.objectContaining({ code: 'MALFORMED_REQUEST' }),
        }),
      ])
      expect(replies[0]?.deviceId).toBeUndefined()
    }
    await gateway.end()
  })

  it('the client library and its outcome: registerDevices with pkcs12Password', async () => {
    const password = pw('lib')
    const [outcome] = await registerDevices({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('gateway-001')),
      devices: [{ deviceId: 'gateway-001-sensor-6', pkcs12Password: password }],
    })
    if (outcome?.status !== 'issued') throw new Error(`not issued: ${JSON.stringify(outcome)}`)
    expect(outcome.credentials.privateKeyPem).toBeUndefined()
    await opened(outcome.credentials.pkcs12 as Buffer, password, outcome.credentials.certificatePem)
  })
})

describe('foreign clients: mosquitto_pub and mosquitto_sub', () => {
  it('a bundle asked for with mosquitto_pub arrives on mosquitto_sub and opens with openssl and Python', async () => {
    const { certFile, keyFile } = bridge.pki.device('device-004')
    const tls = [
      '-h',
      'localhost',
      '-p',
      String(bridge.port),
      '--cafile',
      bridge.pki.file(DEV_PKI_FILES.issuingCaCert),
    ]
    const auth = [...tls, '--cert', certFile, '--key', keyFile]
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
    expect(passwords.length).toBeGreaterThan(8)
    const logs = bridge.logs.join('\n')
    expect(logs).toContain('certificate issued') // the logs are the bridge's, at debug level
    const files: string[] = []
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name)
        if (entry.isDirectory()) await walk(path)
        else files.push(path)
      }
    }
    await walk(bridge.pki.stateDir)
    expect(files).toContain(bridge.bridge.config.registry.file)
    expect(files).toContain(bridge.bridge.config.auditLog)
    const contents = await Promise.all(files.map((f) => readFile(f)))
    for (const password of passwords) {
      expect(logs).not.toContain(password)
      expect(logs).not.toContain(JSON.stringify(password).slice(1, -1)) // as JSON would escape it
      for (const [i, bytes] of contents.entries()) {
        for (const encoded of [Buffer.from(password, 'utf8'), Buffer.from(password, 'utf16le').swap16()])
          expect(bytes.includes(encoded), `${files[i]} holds a password`).toBe(false)
      }
    }
  })
})
