import { X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { register } from '../../src/client/register.js'
import type { TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { hookSettings, type RunningHook, startTestHook } from '../support/hook.js'
import type { WatchEvent } from '../support/kube/store.js'
import { type KubeWorld, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'

/**
 * The registration hook in front of cert-manager (emulated): a narrowed template reaches the Certificate and the
 * CertificateRequest cert-manager signs, a CSR asking for a name the hook took away is denied (cert-manager would
 * sign the CSR's own names), and a denied device creates nothing in the cluster.
 */
const NARROWED = { validityHours: 3, dnsNames: [] as string[] }
const INVENTORY = {
  devices: {
    'device-001': { ...NARROWED, endpoint: 'mqtts://cm.production.example:8883' },
    'device-002': NARROWED,
  },
}

let world: KubeWorld
let hook: RunningHook
let bridge: TestBridge
const created: WatchEvent[] = []

beforeAll(async () => {
  world = await startKubeWorld()
  world.api.store.on('event', (e) => {
    if (e.type === 'ADDED') created.push(e)
  })
  hook = await startTestHook(world.pki, { inventory: INVENTORY })
  bridge = await world.startBridge(
    hookSettings(hook, world.pki, ['certificate.dnsNames={deviceId}.devices.example']),
  )
})

afterAll(async () => {
  await bridge?.stop()
  await hook?.close()
  await world?.close()
})

/** requestOf is the CertificateRequest the bridge created for a device's CSR. */
const requestOf = (id: string): WatchEvent | undefined =>
  created.find(
    (e) =>
      e.resource === RESOURCE.requests &&
      e.object.metadata.annotations?.['registration.mqtt-bridge.dev/device-id'] === id,
  )

const hoursOf = (pem: string): number => {
  const cert = new X509Certificate(pem)
  return (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 3600_000
}

describe('a registration hook with the cert-manager issuer', () => {
  it('server-key mode: the Certificate carries the narrowed template; the reply the assigned endpoint', async () => {
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, world.pki.device('device-001')),
    })
    expect(registration.endpointUrl).toBe('mqtts://cm.production.example:8883')
    const certificate = created.find((e) => e.resource === RESOURCE.certificates)
    expect(certificate?.object).toMatchObject({ spec: { commonName: 'device-001', duration: '3h' } })
    expect(certificate?.object.spec).not.toHaveProperty('dnsNames')
    expect(hoursOf(registration.certificatePem)).toBeCloseTo(3, 1)
    expect(new X509Certificate(registration.certificatePem).subjectAltName).toBeUndefined()
  })

  it('CSR mode: a CSR asking for a name the hook took away is denied; without it, the request is narrowed', async () => {
    const device = await connectDevice(bridge, 'device-002')
    const withName = await opensslCsr('/CN=device-002', undefined, [
      '-addext',
      'subjectAltName=DNS:device-002.devices.example',
    ])
    await device.send({ requestId: 'cm-named', csr: withName.csr })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      error: {
        code: 'REGISTRATION_DENIED',
        message: 'the CSR asks for a name the registration hook did not grant: device-002.devices.example',
      },
    })
    expect(requestOf('device-002')).toBeUndefined()
    await device.send({ requestId: 'cm-plain', csr: (await opensslCsr('/CN=device-002')).csr })
    const reply = await device.nextReply()
    await device.end()
    expect(reply.status).toBe('issued')
    const request = requestOf('device-002')
    expect(request?.object).toMatchObject({ spec: { duration: '3h' } })
    if (reply.status === 'issued') expect(hoursOf(reply.certificate)).toBeCloseTo(3, 1)
  })

  it('a denied device creates nothing in the cluster', async () => {
    const before = world.api.requests.length
    const device = await connectDevice(bridge, 'device-003')
    await device.send({ requestId: 'cm-denied' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      error: { code: 'REGISTRATION_DENIED', message: 'device-003 is not in the inventory' },
    })
    await device.end()
    expect(world.api.requests.slice(before).filter((r) => r.verb === 'create')).toEqual([])
  })
})
