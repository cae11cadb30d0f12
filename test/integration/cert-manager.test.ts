import { X509Certificate } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Certificate, CertificateRequest } from '@kubernetes-models/cert-manager/cert-manager.io/v1'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectTls, register, verifyCredentials } from '../../src/client/index.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import type { TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import type { WatchEvent } from '../support/kube/store.js'
import { type KubeWorld, NAMESPACE, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'
import { opensslPkcs12, pythonPkcs12 } from '../support/pkcs12.js'
import { openssl } from '../support/tools.js'

let world: KubeWorld
let bridge: TestBridge
let production: Mosquitto
const created: WatchEvent[] = []

beforeAll(async () => {
  world = await startKubeWorld()
  world.api.store.on('event', (e) => {
    if (e.type === 'ADDED') created.push(e)
  })
  bridge = await world.startBridge()
  production = await startMosquitto({
    cafile: world.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: world.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: world.pki.file(DEV_PKI_FILES.serverKey),
  })
})

afterAll(async () => {
  if (process.env.DEBUG_LOGS)
    console.log(
      bridge?.logs.filter((l) => !l.includes('"level":20')).join('\n'),
      JSON.stringify(world.api.requests),
    )
  await bridge?.stop()
  await production?.stop()
  await world?.close()
})

afterEach(() => {
  world.certManager.options.issuanceDelayMs = 0
  world.certManager.options.deny = () => false
  world.certManager.options.fail = () => false
})

/** gone resolves once no object of that kind with that name is left in the cluster. */
function gone(r: (typeof RESOURCE)[keyof typeof RESOURCE], name: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      try {
        world.api.store.get(r, NAMESPACE, name)
      } catch {
        world.api.store.off('event', check)
        resolve()
      }
    }
    world.api.store.on('event', check)
    check()
  })
}

const writes = (from: number) =>
  world.api.requests.slice(from).filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb))

describe('server-side key mode: a Certificate', () => {
  it('issues through cert-manager; the device connects to production; nothing is left in the cluster', async () => {
    const before = world.api.requests.length
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('device-001')),
    })
    await verifyCredentials(production.url, registration)
    await gone(RESOURCE.certificates, 'dev-device-001')
    await gone(RESOURCE.secrets, 'dev-device-001-tls')
    expect(writes(before).map((w) => `${w.verb} ${w.resource}`)).toEqual([
      'create certificates',
      'delete certificates',
      'delete secrets',
    ])
    const certificate = created.find(
      (e) => e.resource === RESOURCE.certificates && e.object.metadata.name === 'dev-device-001',
    )
    expect(() => new Certificate(certificate?.object as never).validate()).not.toThrow()
    expect(certificate?.object).toMatchObject({
      metadata: {
        labels: { 'app.kubernetes.io/managed-by': 'mqtt-registration-bridge' },
        annotations: { 'registration.mqtt-bridge.dev/device-id': 'device-001' },
      },
      spec: {
        commonName: 'device-001',
        usages: ['digital signature', 'client auth'],
        privateKey: { algorithm: 'ECDSA', size: 256, encoding: 'PKCS8' },
        issuerRef: { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' },
      },
    })
    // the factory certificate is still refused by production
    await expect(
      connectTls(production.url, tlsFor(bridge, bridge.pki.device('device-001')), 5_000),
    ).rejects.toThrow()
  })
})

describe('server-side key mode: a PKCS#12 bundle', () => {
  it('the key cert-manager made comes in a bundle that openssl and Python open and that connects to production', async () => {
    const password = 'cert-manager bundle password'
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('device-003')),
      keyAlgorithm: 'ECDSA-P384',
      pkcs12Password: password,
    })
    const o = await opensslPkcs12(registration.pkcs12, password)
    expect(o.code, o.info).toBe(0)
    expect(o.info).toContain('PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256')
    expect(await pythonPkcs12(registration.pkcs12, password)).toMatchObject({
      ok: true,
      keyType: 'EllipticCurvePrivateKey',
      keyMatches: true,
      subject: 'CN=device-003',
    })
    await verifyCredentials(production.url, registration, password)
    expect(bridge.logs.join('\n')).not.toContain(password)
  })
})

describe('CBOR (the /cbor topics), through cert-manager', () => {
  it('a server key and a CSR: the reference client reads the DER replies, and the certificates reach production', async () => {
    for (const [device, csr] of [
      ['device-004', false],
      ['device-005', true],
    ] as const) {
      const registration = await register({
        url: bridge.url,
        ...tlsFor(bridge, bridge.pki.device(device)),
        format: 'cbor',
        csr,
      })
      expect(new X509Certificate(registration.certificatePem).subject).toBe(`CN=${device}`)
      await verifyCredentials(production.url, registration)
    }
  })
})

describe('CSR mode: a CertificateRequest', () => {
  it('certifies the device key; the request is deleted after delivery', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cm-'))
    const { csr } = await opensslCsr('/CN=device-002')
    const before = world.api.requests.length
    const device = await connectDevice(bridge, 'device-002')
    await device.send({ requestId: 'cm-csr', csr })
    const reply = (await device.nextReply()) as IssuedReply
    await device.end()
    expect(reply).toMatchObject({ status: 'issued', requestId: 'cm-csr' })
    expect(reply.privateKey).toBeUndefined()
    await writeFile(join(dir, 'crt'), reply.certificate)
    await writeFile(join(dir, 'ca'), reply.caCertificates)
    expect(await openssl(['verify', '-CAfile', join(dir, 'ca'), join(dir, 'crt')])).toContain(': OK')
    const request = created.find(
      (e) =>
        e.resource === RESOURCE.requests &&
        e.object.metadata.annotations?.['registration.mqtt-bridge.dev/device-id'] === 'device-002',
    )
    expect(() => new CertificateRequest(request?.object as never).validate()).not.toThrow()
    await gone(RESOURCE.requests, request?.object.metadata.name ?? '')
    expect(writes(before).map((w) => `${w.verb} ${w.resource}`)).toEqual([
      'create certificaterequests',
      'delete certificaterequests',
    ])
  })
})
