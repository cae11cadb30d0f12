import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/index.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { scrapeMetrics } from '../support/metrics.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import {
  createSecretMount,
  makeCa,
  makeServerCertificate,
  type PemPair,
  replaceFile,
  type SecretMount,
  signerOf,
} from '../support/rotation.js'

let pki: TestPki
let bridge: TestBridge
let listener: SecretMount
let factoryCa: SecretMount
let issuingCa: SecretMount
let productionCaFile: string
let caPem: string // what devices trust the listener with: the development issuing CA

const read = (file: string): string => readFileSync(pki.file(file), 'utf8')

beforeAll(async () => {
  pki = await createTestPki()
  const work = await mkdtemp(join(tmpdir(), 'mrb-rotation-'))
  caPem = read(DEV_PKI_FILES.issuingCaCert)
  listener = await createSecretMount(join(work, 'tls'), {
    'tls.crt': read(DEV_PKI_FILES.serverCert),
    'tls.key': read(DEV_PKI_FILES.serverKey),
  })
  factoryCa = await createSecretMount(join(work, 'factory-ca'), {
    'ca.crt': read(DEV_PKI_FILES.factoryCaCert),
  })
  issuingCa = await createSecretMount(join(work, 'issuing-ca'), {
    'tls.crt': read(DEV_PKI_FILES.issuingCaCert),
    'tls.key': read(DEV_PKI_FILES.issuingCaKey),
  })
  productionCaFile = join(work, 'production-ca.crt')
  await writeFile(productionCaFile, (await makeCa('Production CA 1')).certPem)
  bridge = await startTestBridge(
    [
      `tls.certFile=${listener.file('tls.crt')}`,
      `tls.keyFile=${listener.file('tls.key')}`,
      `tls.clientCaFile=${factoryCa.file('ca.crt')}`,
      `issuer.localCa.certFile=${issuingCa.file('tls.crt')}`,
      `issuer.localCa.keyFile=${issuingCa.file('tls.key')}`,
      `production.caFile=${productionCaFile}`,
      'registration.rateLimit.burst=100',
    ],
    pki,
  )
})

afterAll(async () => {
  await bridge?.stop()
})

/** served does a real TLS handshake as device-001 and returns the fingerprint of the listener's certificate. */
function served(): Promise<string> {
  const device = tlsFor(bridge, pki.device('device-001'))
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: 'localhost',
      port: bridge.port,
      cert: device.certPem,
      key: device.keyPem,
      ca: caPem,
    })
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '')
      socket.end()
    })
    socket.once('error', reject)
  })
}

/** tls11 tries a TLS 1.1 handshake as device-001 (the client allows it; the server must not). */
function tls11(): Promise<void> {
  const device = tlsFor(bridge, pki.device('device-001'))
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: 'localhost',
      port: bridge.port,
      cert: device.certPem,
      key: device.keyPem,
      ca: caPem,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    })
    socket.once('secureConnect', () => {
      socket.destroy()
      resolve()
    })
    socket.once('error', reject)
  })
}

const fingerprint = (pair: PemPair): string => new X509Certificate(pair.certPem).fingerprint256

/** logged resolves with the next log entry with this message. */
function logged(msg: string): Promise<Record<string, unknown>> {
  const seen = bridge.logs.length
  return bridge.waitForLog(msg).then(() => {
    const line = bridge.logs.slice(seen).find((l) => JSON.parse(l).msg === msg) as string
    return JSON.parse(line) as Record<string, unknown>
  })
}

async function register(id: string, requestId: string): Promise<IssuedReply> {
  const device = await connectDevice(bridge, id)
  await device.send({ requestId, keyAlgorithm: 'ECDSA-P256' })
  const reply = await device.nextReply()
  await device.end()
  expect(reply.status).toBe('issued')
  return reply as IssuedReply
}

describe('the listener certificate and key, from a Secret mount (..data symlink swap)', () => {
  it('new handshakes get the new certificate; a device connected before stays connected and is served', async () => {
    const before = await served()
    expect(before).toBe(new X509Certificate(read(DEV_PKI_FILES.serverCert)).fingerprint256)
    const connected = await connectDevice(bridge, 'device-002')
    const next = await makeServerCertificate(
      await signerOf(pki.file(DEV_PKI_FILES.issuingCaCert), pki.file(DEV_PKI_FILES.issuingCaKey)),
    )
    const reloaded = logged('TLS material reloaded')
    await listener.update({ 'tls.crt': next.certPem, 'tls.key': next.keyPem })
    expect(await reloaded).toMatchObject({ material: 'listener' })
    expect(await served()).toBe(fingerprint(next))
    // still TLS 1.2+ only with the new context: the server refuses TLS 1.1
    const logsBefore = bridge.logs.length
    const failed = bridge.waitForLog('TLS handshake failed')
    await expect(tls11()).rejects.toThrow()
    await failed
    expect(bridge.logs.slice(logsBefore).join('\n')).toMatch(/unsupported protocol/)
    // the connection made before the rotation was not dropped
    await connected.send({ requestId: 'after-rotation', keyAlgorithm: 'ECDSA-P256' })
    expect((await connected.nextReply()).status).toBe('issued')
    await connected.end()
    const metrics = await scrapeMetrics(bridge.bridge.healthPort as number)
    expect(
      metrics.sample('mqtt_registration_bridge_certificate_expiry_timestamp_seconds', {
        certificate: 'listener',
      }),
    ).toBe(new Date(new X509Certificate(next.certPem).validTo).getTime() / 1000)
  })

  it('a key that does not match the certificate is refused with a log line, and the current pair kept', async () => {
    const current = await served()
    const signer = await signerOf(pki.file(DEV_PKI_FILES.issuingCaCert), pki.file(DEV_PKI_FILES.issuingCaKey))
    const a = await makeServerCertificate(signer)
    const b = await makeServerCertificate(signer)
    const refused = logged('TLS material refused; keeping the current one')
    await listener.update({ 'tls.crt': a.certPem, 'tls.key': b.keyPem })
    expect(await refused).toMatchObject({ material: 'listener', level: 50 })
    expect(String((await refused).reason)).toMatch(/tls.keyFile/)
    expect(await served()).toBe(current)
    const metrics = await scrapeMetrics(bridge.bridge.healthPort as number)
    expect(
      metrics.sample('mqtt_registration_bridge_tls_reloads_total', {
        material: 'listener',
        result: 'refused',
      }),
    ).toBe(1)
  })

  it('a file that is not PEM is refused, and the current pair kept', async () => {
    const current = await served()
    const refused = logged('TLS material refused; keeping the current one')
    await listener.update({ 'tls.crt': 'not a certificate', 'tls.key': 'not a key' })
    expect(await refused).toMatchObject({ material: 'listener' })
    expect(await served()).toBe(current)
  })
})

describe('the factory CA bundle', () => {
  it('devices of a new factory CA connect once it is in the bundle; those of a CA taken out no longer do', async () => {
    const newFactory = await makeCa('Factory CA 2')
    const deviceOfNew = await makeServerCertificate(newFactory.signer, 'device-new', 'clientAuth')
    const newDevice = { certPem: deviceOfNew.certPem, keyPem: deviceOfNew.keyPem, caPem }
    const outcome = async (tls: { certPem: string; keyPem: string; caPem: string }) =>
      connectTls(bridge.url, tls, 5_000).then(
        async (client) => {
          await client.endAsync(true)
          return 'connected'
        },
        () => 'refused',
      )
    expect(await outcome(newDevice)).toBe('refused')
    // the listener's mount still holds the unusable pair refused above: that must not hold up the factory CAs
    expect(readFileSync(listener.file('tls.crt'), 'utf8')).toBe('not a certificate')
    const reloaded = logged('TLS material reloaded')
    await factoryCa.update({ 'ca.crt': newFactory.certPem })
    expect(await reloaded).toMatchObject({ material: 'factory_ca' })
    expect(await outcome(newDevice)).toBe('connected')
    expect(await outcome(tlsFor(bridge, pki.device('device-001')))).toBe('refused')
    const back = logged('TLS material reloaded')
    await factoryCa.update({ 'ca.crt': read(DEV_PKI_FILES.factoryCaCert) + newFactory.certPem })
    await back
    expect(await outcome(tlsFor(bridge, pki.device('device-001')))).toBe('connected')
  })
})

describe('the production CA file, replaced by rename', () => {
  it('replies carry the new production CA', async () => {
    const next = await makeCa('Production CA 2')
    const reloaded = logged('TLS material reloaded')
    await replaceFile(productionCaFile, next.certPem)
    expect(await reloaded).toMatchObject({ material: 'production_ca' })
    const reply = await register('device-003', 'production-ca')
    expect(reply.caCertificates).toContain(next.certPem.trim())
  })

  it('an empty file is refused, and replies keep the current CA', async () => {
    const current = readFileSync(productionCaFile, 'utf8')
    const refused = logged('TLS material refused; keeping the current one')
    await replaceFile(productionCaFile, '')
    expect(await refused).toMatchObject({ material: 'production_ca' })
    await pki.makeDevice('device-ca-kept')
    const reply = await register('device-ca-kept', 'production-ca-kept')
    expect(reply.caCertificates).toContain(current.trim())
  })
})

describe('the embedded CA certificate and key', () => {
  it('certificates issued after the swap are signed by the new CA', async () => {
    const next = await makeCa('Issuing CA 2')
    const reloaded = logged('TLS material reloaded')
    await issuingCa.update({ 'tls.crt': next.certPem, 'tls.key': next.keyPem })
    expect(await reloaded).toMatchObject({ material: 'issuing_ca' })
    const reply = await register('device-004', 'new-ca')
    const issued = new X509Certificate(reply.certificate)
    expect(issued.verify(new X509Certificate(next.certPem).publicKey)).toBe(true)
    expect(reply.caCertificates).toContain(next.certPem.trim())
  })

  it('a CA certificate with another CA’s key is refused; issuance goes on with the current CA', async () => {
    const current = readFileSync(issuingCa.file('tls.crt'), 'utf8')
    const other = await makeCa('Issuing CA 3')
    const another = await makeCa('Issuing CA 4')
    const refused = logged('TLS material refused; keeping the current one')
    await issuingCa.update({ 'tls.crt': other.certPem, 'tls.key': another.keyPem })
    expect(await refused).toMatchObject({ material: 'issuing_ca' })
    const reply = await register('device-005', 'kept-ca')
    expect(new X509Certificate(reply.certificate).verify(new X509Certificate(current).publicKey)).toBe(true)
  })

  it('an expired CA is refused', async () => {
    const expired = await makeCa('Expired CA', {
      notBefore: new Date(Date.now() - 2 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    })
    const refused = logged('TLS material refused; keeping the current one')
    await issuingCa.update({ 'tls.crt': expired.certPem, 'tls.key': expired.keyPem })
    expect(String((await refused).reason)).toMatch(/expired/)
  })
})
