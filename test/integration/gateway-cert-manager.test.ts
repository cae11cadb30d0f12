import { X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerDevices } from '../../src/client/register-devices.js'
import type { TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { tlsFor } from '../support/device.js'
import { writePolicy } from '../support/gateway.js'
import type { WatchEvent } from '../support/kube/store.js'
import { type KubeWorld, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'

let world: KubeWorld
let bridge: TestBridge
const created: WatchEvent[] = []

beforeAll(async () => {
  world = await startKubeWorld()
  world.api.store.on('event', (e) => {
    if (e.type === 'ADDED') created.push(e)
  })
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await world.startBridge([
    `gateways.policyFile=${policy}`,
    'certificate.gatewayUris=urn:registration-bridge:gateway:{gatewayId}',
  ])
})

afterAll(async () => {
  await bridge?.stop()
  await world?.close()
})

describe('a gateway batch through cert-manager', () => {
  it('creates one Certificate or CertificateRequest per downstream device, each for the sensor', async () => {
    const csr = await opensslCsr('/CN=gateway-001-sensor-c')
    const outcomes = await registerDevices({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('gateway-001')),
      requestId: 'cm-batch',
      devices: [
        { deviceId: 'gateway-001-sensor-a' },
        { deviceId: 'gateway-001-sensor-b', keyAlgorithm: 'ECDSA-P384' },
        { deviceId: 'gateway-001-sensor-c', csr: csr.csr },
        { deviceId: 'device-002' },
      ],
    })
    expect(outcomes.map((o) => [o.deviceId, o.status])).toEqual([
      ['gateway-001-sensor-a', 'issued'],
      ['gateway-001-sensor-b', 'issued'],
      ['gateway-001-sensor-c', 'issued'],
      ['device-002', 'rejected'],
    ])
    for (const outcome of outcomes.slice(0, 3)) {
      if (outcome.status !== 'issued') throw new Error('not issued')
      expect(new X509Certificate(outcome.credentials.certificatePem).subject).toContain(
        `CN=${outcome.deviceId}`,
      )
    }
    const a = outcomes[0]
    if (a?.status !== 'issued') throw new Error('not issued')
    expect(new X509Certificate(a.credentials.certificatePem).subjectAltName).toBe(
      'URI:urn:registration-bridge:gateway:gateway-001',
    )
    const kinds = created
      .filter((e) =>
        ['Certificate', 'CertificateRequest'].includes((e.object as { kind?: string }).kind ?? ''),
      )
      .map((e) => (e.object as { kind: string }).kind)
    // two Certificates (server-side keys), each signed through a CertificateRequest cert-manager makes, and the
    // bridge's own CertificateRequest for the sensor's CSR
    expect(kinds.sort()).toEqual([
      'Certificate',
      'Certificate',
      'CertificateRequest',
      'CertificateRequest',
      'CertificateRequest',
    ])
    expect(world.count(RESOURCE.secrets)).toBe(1) // only the CA's: server-side keys left no Secret behind
  })
})
