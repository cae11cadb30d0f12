import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerDevices } from '../../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import { openssl } from '../support/tools.js'

const POLICY = `
gateways:
  - match: gateway-003
    devices: { patterns: ["gateway-001-sensor-*"] }
    transfer: true
  - match: gateway-004
    devices: { patterns: ["{gateway}-sensor-*"] }
    quota: { maxDevices: 2, burst: 3, perMinute: 1 }
  - match: gateway-001
    devices:
      patterns: ["{gateway}-sensor-*"]
      allowListFile: allow.txt
    quota: { maxDevices: 200, perMinute: 60000, burst: 1000 }
  - match: gateway-002
    devices:
      patterns: ["gateway-001-sensor-*", "{gateway}-sensor-*"]
    serverKeys: false
    keyAlgorithms: [ECDSA-P256]
`

let bridge: TestBridge
let policyFile: string

beforeAll(async () => {
  policyFile = await writePolicy(POLICY, 'legacy-meter-7\n# a comment\n')
  bridge = await startTestBridge([
    `gateways.policyFile=${policyFile}`,
    'certificate.gatewayUris=urn:registration-bridge:gateway:{gatewayId}',
  ])
  await bridge.pki.makeDevice('gateway-002')
  await bridge.pki.makeDevice('gateway-003')
  await bridge.pki.makeDevice('gateway-004')
})

afterAll(async () => {
  await bridge?.stop()
})

describe('a gateway registers its sensors over its own connection', () => {
  it('registers 100 sensors in one message, CSR and server-side keys mixed, each identified as the sensor', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `gateway-001-sensor-${String(i).padStart(3, '0')}`)
    const withOpenssl = await opensslCsr('/CN=gateway-001-sensor-000')
    const outcomes = await registerDevices({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('gateway-001')),
      requestId: 'hundred',
      devices: ids.map((deviceId, i) =>
        i === 0
          ? { deviceId, csr: withOpenssl.csr }
          : i % 2 === 0
            ? { deviceId, generateKey: true }
            : { deviceId, keyAlgorithm: i % 3 === 0 ? 'Ed25519' : 'ECDSA-P256' },
      ),
    })
    expect(outcomes.map((o) => o.status)).toEqual(ids.map(() => 'issued'))
    const issuingCa = bridge.pki.file(DEV_PKI_FILES.issuingCaCert)
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status !== 'issued') throw new Error('not issued')
      const cert = new X509Certificate(outcome.credentials.certificatePem)
      expect(cert.subject).toContain(`CN=${ids[i]}`)
      expect(cert.subjectAltName).toBe('URI:urn:registration-bridge:gateway:gateway-001')
      expect(outcome.credentials.privateKeyPem === undefined).toBe(i === 0)
    }
    const first = outcomes[1]
    if (first?.status !== 'issued') throw new Error('not issued')
    const certFile = join(bridge.pki.stateDir, 'sensor-001.crt')
    await writeFile(certFile, first.credentials.certificatePem)
    expect(await openssl(['verify', '-CAfile', issuingCa, certFile])).toContain(': OK')

    const audit = (await bridge.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    const downstream = audit.filter((r) => r.registeredBy === 'gateway-001')
    expect(downstream.map((r) => r.identity).sort()).toEqual([...ids].sort())
    const registry = new SqliteRegistry(bridge.bridge.config.registry.file, { readonly: true })
    const owned = await registry.list({ owner: 'gateway-001' })
    await registry.close()
    expect(owned.map((d) => d.identity).sort()).toEqual([...ids].sort())
  })

  it('refuses devices outside the policy one by one, with a reason, and issues the rest', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const replies = await gateway.batch({
      requestId: 'mixed-policy',
      devices: [
        { deviceId: 'gateway-001-sensor-500' },
        { deviceId: 'gateway-002-sensor-1' },
        { deviceId: 'device-002' },
        { deviceId: 'gateway-001' },
        { deviceId: 'legacy-meter-7' },
      ],
    })
    await gateway.end()
    const results = byDevice(replies)
    expect(results.get('gateway-001-sensor-500')?.status).toBe('issued')
    expect(results.get('legacy-meter-7')?.status).toBe('issued')
    for (const id of ['gateway-002-sensor-1', 'device-002']) {
      expect(results.get(id)).toMatchObject({
        status: 'rejected',
        error: { code: 'NOT_AUTHORIZED', reason: 'DEVICE_NOT_ALLOWED', retryable: false },
      })
    }
    expect(results.get('gateway-001')).toMatchObject({
      status: 'rejected',
      error: { code: 'NOT_AUTHORIZED', reason: 'DEVICE_IS_A_GATEWAY', retryable: false },
    })
    expect(replies.at(-1)).toMatchObject({
      status: 'complete',
      issued: 2,
      rejected: 3,
      extension: 'gateway/1',
    })
  })

  it("applies the gateway's key rules: no server keys, only the listed algorithms", async () => {
    const gateway = await connectGateway(bridge, 'gateway-002')
    const p384 = await opensslCsr('/CN=gateway-002-sensor-2', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384'])
    const p256 = await opensslCsr('/CN=gateway-002-sensor-3')
    const replies = await gateway.batch({
      requestId: 'keys',
      devices: [
        { deviceId: 'gateway-002-sensor-1' },
        { deviceId: 'gateway-002-sensor-2', csr: p384.csr },
        { deviceId: 'gateway-002-sensor-3', csr: p256.csr },
      ],
    })
    await gateway.end()
    const results = byDevice(replies)
    expect(results.get('gateway-002-sensor-1')).toMatchObject({ error: { reason: 'SERVER_KEY_NOT_ALLOWED' } })
    expect(results.get('gateway-002-sensor-2')).toMatchObject({
      error: { reason: 'KEY_ALGORITHM_NOT_ALLOWED' },
    })
    expect(results.get('gateway-002-sensor-3')?.status).toBe('issued')
  })

  it('an unknown keyAlgorithm refuses only its device; the others of the batch are issued', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const replies = byDevice(
      await gateway.batch({
        requestId: 'one-bad-key',
        devices: [
          { deviceId: 'gateway-001-sensor-700', keyAlgorithm: 'DSA-1024' },
          { deviceId: 'gateway-001-sensor-701', keyAlgorithm: 'ECDSA-P256' },
        ],
      }),
    )
    await gateway.end()
    expect(replies.get('gateway-001-sensor-700')).toMatchObject({
      status: 'rejected',
      error: { code: 'KEY_NOT_ALLOWED', retryable: false },
    })
    expect(replies.get('gateway-001-sensor-701')?.status).toBe('issued')
  })

  it('lets no second gateway take over a sensor another gateway registered', async () => {
    const csr = await opensslCsr('/CN=gateway-001-sensor-007')
    const gateway = await connectGateway(bridge, 'gateway-002')
    const replies = await gateway.batch({
      requestId: 'takeover',
      devices: [{ deviceId: 'gateway-001-sensor-007', csr: csr.csr }],
    })
    await gateway.end()
    expect(byDevice(replies).get('gateway-001-sensor-007')).toMatchObject({
      status: 'rejected',
      error: { code: 'NOT_AUTHORIZED', reason: 'OWNED_BY_ANOTHER_GATEWAY' },
    })
  })

  it('a retried batch issues only the devices that failed, and answers the others with the same certificate', async () => {
    const good = await opensslCsr('/CN=gateway-001-sensor-600')
    const wrong = await opensslCsr('/CN=gateway-001-sensor-999')
    const fixed = await opensslCsr('/CN=gateway-001-sensor-601')
    const gateway = await connectGateway(bridge, 'gateway-001')
    const devices = [
      { deviceId: 'gateway-001-sensor-600', csr: good.csr },
      { deviceId: 'gateway-001-sensor-602', keyAlgorithm: 'ECDSA-P256' },
    ]
    const before = (await bridge.auditLines()).length
    const first = byDevice(
      await gateway.batch({
        requestId: 'retry-me',
        devices: [...devices, { deviceId: 'gateway-001-sensor-601', csr: wrong.csr }],
      }),
    )
    expect(first.get('gateway-001-sensor-601')).toMatchObject({ error: { code: 'CSR_IDENTITY_MISMATCH' } })
    expect((await bridge.auditLines()).length).toBe(before + 2)

    const retry = byDevice(
      await gateway.batch({
        requestId: 'retry-me',
        devices: [...devices, { deviceId: 'gateway-001-sensor-601', csr: fixed.csr }],
      }),
    )
    await gateway.end()
    expect(retry.get('gateway-001-sensor-601')?.status).toBe('issued')
    for (const { deviceId } of devices) {
      expect(retry.get(deviceId)?.serialNumber).toBe(first.get(deviceId)?.serialNumber)
      expect(retry.get(deviceId)?.privateKey).toBe(first.get(deviceId)?.privateKey)
    }
    expect((await bridge.auditLines()).length).toBe(before + 3)
  })
})

describe('ownership and quotas', () => {
  it('a gateway whose rule allows transfer takes a sensor over; the first gateway then cannot', async () => {
    const takeover = await connectGateway(bridge, 'gateway-003')
    const taken = byDevice(
      await takeover.batch({ requestId: 'transfer', devices: [{ deviceId: 'gateway-001-sensor-008' }] }),
    )
    await takeover.end()
    expect(taken.get('gateway-001-sensor-008')?.status).toBe('issued')
    const registry = new SqliteRegistry(bridge.bridge.config.registry.file, { readonly: true })
    const device = await registry.device('gateway-001-sensor-008')
    await registry.close()
    expect(device?.owner).toBe('gateway-003')
    expect(device?.certificates.map((c) => [c.registeredBy, c.state])).toEqual([
      ['gateway-003', 'active'],
      ['gateway-001', 'superseded'],
    ])
    const original = await connectGateway(bridge, 'gateway-001')
    const back = byDevice(
      await original.batch({ requestId: 'back', devices: [{ deviceId: 'gateway-001-sensor-008' }] }),
    )
    await original.end()
    expect(back.get('gateway-001-sensor-008')).toMatchObject({
      error: { reason: 'OWNED_BY_ANOTHER_GATEWAY' },
    })
  })

  it('a retried batch is not replayed once its certificate is superseded or its device taken over', async () => {
    const original = await connectGateway(bridge, 'gateway-001')
    const batch = { requestId: 'replay-me', devices: [{ deviceId: 'gateway-001-sensor-009' }] }
    const first = byDevice(await original.batch(batch)).get('gateway-001-sensor-009')
    expect(first?.status).toBe('issued')
    // a newer request of the same gateway supersedes it: the old request is issued afresh, never the stale key
    const newer = byDevice(
      await original.batch({ requestId: 'newer', devices: [{ deviceId: 'gateway-001-sensor-009' }] }),
    ).get('gateway-001-sensor-009')
    expect(newer?.status).toBe('issued')
    const again = byDevice(await original.batch(batch)).get('gateway-001-sensor-009')
    expect(again?.status).toBe('issued')
    expect(again?.serialNumber).not.toBe(first?.serialNumber)
    expect(again?.privateKey).not.toBe(first?.privateKey)
    // another gateway takes it over: the first gateway's retry is refused, not answered with a key it no longer owns
    const takeover = await connectGateway(bridge, 'gateway-003')
    const taken = byDevice(
      await takeover.batch({ requestId: 'transfer-9', devices: [{ deviceId: 'gateway-001-sensor-009' }] }),
    )
    await takeover.end()
    expect(taken.get('gateway-001-sensor-009')?.status).toBe('issued')
    const after = byDevice(await original.batch(batch)).get('gateway-001-sensor-009')
    await original.end()
    expect(after).toMatchObject({ status: 'rejected', error: { reason: 'OWNED_BY_ANOTHER_GATEWAY' } })
    expect(after).not.toHaveProperty('privateKey')
  })

  it('past its quota of devices a gateway is refused per device, and past its rate it is told when to retry', async () => {
    const gateway = await connectGateway(bridge, 'gateway-004')
    const ids = ['gateway-004-sensor-1', 'gateway-004-sensor-2', 'gateway-004-sensor-3']
    const first = byDevice(
      await gateway.batch({ requestId: 'quota', devices: ids.map((deviceId) => ({ deviceId })) }),
    )
    // the refused device spent no token (burst 3): one renewal is left, then the rate is spent
    const owned = ids.filter((id) => first.get(id)?.status === 'issued')
    const again = [
      ...byDevice(
        await gateway.batch({ requestId: 'rate', devices: owned.map((deviceId) => ({ deviceId })) }),
      ).values(),
    ]
    await gateway.end()
    const statuses = ids.map((id) => first.get(id)?.error ?? first.get(id)?.status)
    expect(statuses.filter((s) => s === 'issued')).toHaveLength(2)
    expect(statuses).toContainEqual(
      expect.objectContaining({ code: 'NOT_AUTHORIZED', reason: 'QUOTA_EXCEEDED' }),
    )
    expect(again.map((r) => r.status).sort()).toEqual(['issued', 'rejected'])
    expect(again.find((r) => r.status === 'rejected')).toMatchObject({
      error: { code: 'RATE_LIMITED', retryable: true, retryAfterSeconds: expect.any(Number) },
    })
  })
})

describe('isolation', () => {
  it("no other device or gateway can read a gateway's replies", async () => {
    for (const id of ['device-001', 'gateway-002']) {
      const other = await connectDevice(bridge, id, { subscribe: false })
      for (const filter of ['registration/gateway-001/reply', 'registration/+/reply', '#']) {
        const refusal = await other.client.subscribeAsync(filter, { qos: 1 }).then(
          () => undefined,
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
        )
        expect(refusal).toEqual([128])
      }
      await other.end()
    }
  })

  it('a plain device cannot use the gateway extension, and nothing is issued', async () => {
    const before = (await bridge.auditLines()).length
    const device = await connectDevice(bridge, 'device-001')
    await device.send({
      version: 1,
      extension: 'gateway/1',
      requestId: 'sneaky',
      devices: [{ deviceId: 'device-002' }],
    })
    const reply = await device.nextReply()
    await device.end()
    expect(reply).toMatchObject({
      status: 'rejected',
      requestId: 'sneaky',
      error: { code: 'NOT_AUTHORIZED', reason: 'NOT_A_GATEWAY', retryable: false },
    })
    expect((await bridge.auditLines()).length).toBe(before)
  })

  it('another extension version is UNSUPPORTED_VERSION for anyone, gateway or not', async () => {
    const device = await connectDevice(bridge, 'device-001')
    await device.send({ extension: 'gateway/2', requestId: 'v2', devices: [{ deviceId: 'device-002' }] })
    const reply = await device.nextReply()
    await device.end()
    expect(reply).toMatchObject({ status: 'rejected', error: { code: 'UNSUPPORTED_VERSION' } })
  })

  it('v1 requests from a gateway keep working unchanged', async () => {
    const device = await connectDevice(bridge, 'gateway-001')
    await device.send({ requestId: 'own-cert' })
    const reply = await device.nextReply()
    await device.end()
    expect(reply).toMatchObject({ status: 'issued', requestId: 'own-cert' })
    expect(reply).not.toHaveProperty('extension')
    expect(new X509Certificate((reply as IssuedReply).certificate).subjectAltName).toBeUndefined()
  })

  it('a malformed batch is refused whole, with its requestId', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const replies = await gateway.batch({
      requestId: 'bad-batch',
      devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'gateway-001-sensor-1' }],
    })
    const unknown = await gateway.batch({
      requestId: 'bad-field',
      devices: [{ deviceId: 'x', colour: 'red' }],
    })
    await gateway.end()
    expect(replies).toEqual([
      expect.objectContaining({
        status: 'rejected',
        error: expect.objectContaining({ code: 'MALFORMED_REQUEST' }),
      }),
    ])
    expect(unknown).toEqual([
      expect.objectContaining({
        status: 'rejected',
        error: expect.objectContaining({ code: 'UNKNOWN_FIELD' }),
      }),
    ])
  })
})
