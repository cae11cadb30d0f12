import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls, register, verifyCredentials } from '../../src/client/index.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'
import { openssl } from '../support/tools.js'

let bridge: TestBridge
let production: Mosquitto
let work: string

beforeAll(async () => {
  bridge = await startTestBridge([
    'certificate.dnsNames={deviceId}.qiot-project.github.io,{deviceId}.qiot-project.svc',
    'certificate.uris=spiffe://example.org/device/{deviceId}',
    'registration.rateLimit.burst=100',
  ])
  production = await startMosquitto({
    cafile: bridge.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: bridge.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: bridge.pki.file(DEV_PKI_FILES.serverKey),
  })
  work = await mkdtemp(join(tmpdir(), 'mrb-reg-'))
})

afterAll(async () => {
  await bridge?.stop()
  await production?.stop()
})

async function writeIssued(reply: IssuedReply, name: string): Promise<{ cert: string; ca: string }> {
  const cert = join(work, `${name}.crt`)
  const ca = join(work, `${name}-ca.crt`)
  await writeFile(cert, reply.certificate)
  await writeFile(ca, reply.caCertificates)
  return { cert, ca }
}

describe('server-side key generation over MQTT.js', () => {
  it.each(['ECDSA-P256', 'ECDSA-P384', 'Ed25519', 'RSA-2048'] as const)(
    'issues %s credentials that openssl verifies',
    async (alg) => {
      // one identity per key type: the default re-registration policy refuses a second registration
      const id = `device-001-${alg.toLowerCase()}`
      await bridge.pki.makeDevice(id)
      const device = await connectDevice(bridge, id)
      await device.send({ requestId: `server-${alg}`, keyAlgorithm: alg })
      const reply = await device.nextReply()
      await device.end()
      expect(reply.status).toBe('issued')
      const issued = reply as IssuedReply
      expect(issued.requestId).toBe(`server-${alg}`)
      expect(issued.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/)
      const files = await writeIssued(issued, `server-${alg}`)
      expect(await openssl(['verify', '-CAfile', files.ca, files.cert])).toContain(': OK')
      const text = await openssl(['x509', '-in', files.cert, '-noout', '-text'])
      expect(text).toContain(`Subject: CN = ${id}`)
      expect(text).toContain(`DNS:${id}.qiot-project.github.io, DNS:${id}.qiot-project.svc`)
      expect(text).toContain(`URI:spiffe://example.org/device/${id}`)
      expect(text).toContain('TLS Web Client Authentication')
      expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/)
      const cert = new X509Certificate(issued.certificate)
      expect(cert.serialNumber.toLowerCase()).toBe(issued.serialNumber)
      expect(new Date(cert.validTo).toISOString()).toBe(issued.notAfter)
      expect(
        cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(issued.privateKey ?? '')),
      ).toBe(true)
    },
  )
})

describe('CSR mode with openssl-made CSRs', () => {
  const keyTypes: [string, string[]][] = [
    ['ECDSA P-256', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ECDSA P-384', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['Ed25519', ['ed25519']],
    ['RSA 2048', ['rsa:2048']],
    ['RSA 3072', ['rsa:3072']],
  ]
  it.each(keyTypes)('certifies a %s key without ever seeing it', async (name, keyArgs) => {
    const id = `device-002-${name.replace(/\W/g, '').toLowerCase()}`
    await bridge.pki.makeDevice(id)
    const { csr, keyFile } = await opensslCsr(`/CN=${id}`, keyArgs)
    const device = await connectDevice(bridge, id)
    await device.send({ requestId: `csr-${name.replace(/\W/g, '')}`, csr })
    const reply = (await device.nextReply()) as IssuedReply
    await device.end()
    expect(reply).toEqual(expect.objectContaining({ status: 'issued' }))
    expect(reply.privateKey).toBeUndefined()
    const files = await writeIssued(reply, `csr-${name.replace(/\W/g, '')}`)
    expect(await openssl(['verify', '-CAfile', files.ca, files.cert])).toContain(': OK')
    // the certificate is for the device's own key
    const certKey = await openssl(['x509', '-in', files.cert, '-noout', '-pubkey'])
    const deviceKey = await openssl(['pkey', '-in', keyFile, '-pubout'])
    expect(certKey).toBe(deviceKey)
  })

  it("accepts a CSR that asks for the device's own template names", async () => {
    await bridge.pki.makeDevice('device-002-names')
    const { csr } = await opensslCsr('/CN=device-002-names', [
      ...['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ...[
        '-addext',
        'subjectAltName=DNS:device-002-names.qiot-project.svc,URI:spiffe://example.org/device/device-002-names',
      ],
    ])
    const device = await connectDevice(bridge, 'device-002-names')
    await device.send({ csr })
    expect(await device.nextReply()).toMatchObject({ status: 'issued' })
    await device.end()
  })

  it('accepts a CSR as base64 DER', async () => {
    await bridge.pki.makeDevice('device-002-der')
    const { csr } = await opensslCsr('/CN=device-002-der', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'])
    const der = csr.replace(/-----[A-Z ]+-----|\s/g, '')
    const device = await connectDevice(bridge, 'device-002-der')
    await device.send({ csr: der })
    const reply = await device.nextReply()
    await device.end()
    expect(reply.status).toBe('issued')
  })
})

describe('the credentials work on the production broker', () => {
  it('a registered device connects to mosquitto; its factory certificate is refused there', async () => {
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('device-003')),
    })
    await verifyCredentials(production.url, registration)
    const factory = tlsFor(bridge, bridge.pki.device('device-003'))
    await expect(connectTls(production.url, factory, 5_000)).rejects.toThrow()
  })

  it('the reference client in CSR mode, verified with mosquitto_pub against production', async () => {
    const registration = await register({
      url: bridge.url,
      csr: true,
      ...tlsFor(bridge, bridge.pki.device('device-004')),
    })
    const dir = await mkdtemp(join(work, 'creds-'))
    await writeFile(join(dir, 'device.crt'), registration.certificatePem)
    await writeFile(join(dir, 'device.key'), registration.privateKeyPem)
    await writeFile(join(dir, 'ca.crt'), registration.caCertificatesPem)
    const { run } = await import('../support/tools.js')
    const pub = await run('mosquitto_pub', [
      ...['-h', 'localhost', '-p', String(production.port), '--cafile', join(dir, 'ca.crt')],
      ...[
        '--cert',
        join(dir, 'device.crt'),
        '--key',
        join(dir, 'device.key'),
        '-t',
        'telemetry/device-004',
        '-m',
        'hello',
      ],
    ])
    expect(pub.stderr).toBe('')
    expect(pub.code).toBe(0)
  })
})

describe('private keys stay out of logs, the audit log and the registry', () => {
  it('after every registration above (server-side keys included), none holds a key', async () => {
    const issued = await register({ url: bridge.url, ...tlsFor(bridge, bridge.pki.device('device-005')) })
    expect(issued.privateKeyPem).toContain('PRIVATE KEY')
    const keyBody = issued.privateKeyPem.split('\n')[1] ?? ''
    const everything = [...bridge.logs, ...(await bridge.auditLines())].join('\n')
    expect(bridge.logs.length).toBeGreaterThan(10) // the bridge did log (at debug), so this can fail
    expect(everything).not.toContain('PRIVATE KEY')
    expect(everything).not.toContain(keyBody)
    // the registry keeps each issued chain (public), never a key: its file and write-ahead log, as bytes
    const file = bridge.bridge.config.registry.file
    const stored = (
      await Promise.all([file, `${file}-wal`].map((f) => readFile(f).catch(() => Buffer.alloc(0))))
    )
      .map((b) => b.toString('latin1'))
      .join('')
    expect(stored).toContain('BEGIN CERTIFICATE') // the scan sees what is stored
    expect(stored).not.toContain('PRIVATE KEY')
    expect(stored).not.toContain(keyBody)
  })
})
