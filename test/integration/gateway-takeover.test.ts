import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import type { DownstreamCredentials } from '../../src/client/register.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { byDevice, connectGateway, type GatewayMessage, writePolicy } from '../support/gateway.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/**
 * Who may obtain an identity's credentials through a gateway. Every path a gateway has to a certificate is
 * tried — CSR and server-key items, a batch retried from the reply cache and from the issued index after a
 * restart — against every holder an identity can have: unknown, another gateway in the policy, the device itself,
 * another gateway as owner; with the product default `lifecycle.reRegistration=refuse` and with `allow`.
 */
const bridges: TestBridge[] = []

afterAll(async () => {
  for (const b of bridges) await b.stop()
})

async function started(pki: TestPki, policy: string, sets: string[] = []): Promise<TestBridge> {
  const b = await startTestBridge([`gateways.policyFile=${await writePolicy(policy)}`, ...sets], pki)
  bridges.push(b)
  return b
}

async function batch(b: TestBridge, gateway: string, requestId: string, devices: object[]) {
  const g = await connectGateway(b, gateway)
  const replies = await g.batch({ requestId, devices })
  await g.end()
  return byDevice(replies)
}

async function registry<T>(b: TestBridge, read: (r: SqliteRegistry) => Promise<T>): Promise<T> {
  const r = new SqliteRegistry(b.bridge.config.registry.file, { readonly: true })
  try {
    return await read(r)
  } finally {
    await r.close()
  }
}

/** session connects a persistent (clean: false) session of the gateway with this client id. */
async function session(b: TestBridge, id: string, clientId: string) {
  const tls = tlsFor(b, b.pki.device(id))
  const client = await mqtt.connectAsync(b.url, {
    ...{ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0, protocolVersion: 4 },
    clientId,
    clean: false,
  })
  const messages: GatewayMessage[] = []
  client.on('message', (_t, payload) => messages.push(JSON.parse(payload.toString('utf8')) as GatewayMessage))
  return { client, messages }
}

/** heard resolves at the first message of the session that `matches`. */
function heard(s: { client: mqtt.MqttClient }, matches: (m: GatewayMessage) => boolean): Promise<void> {
  return new Promise<void>((resolve) =>
    s.client.on('message', (_t, p) => {
      if (matches(JSON.parse(p.toString('utf8')) as GatewayMessage)) resolve()
    }),
  )
}

/** sendMarker sends a batch refused at once, and waits for its reply: what was queued before it came first. */
async function sendMarker(s: { client: mqtt.MqttClient }): Promise<void> {
  const marker = heard(s, (m) => m.requestId === 'marker')
  await s.client.publishAsync('registration/request', '{"extension":"gateway/1","requestId":"marker"}', {
    qos: 1,
  })
  await marker
}

const denied = (reason: string) => ({
  status: 'rejected',
  error: { code: 'NOT_AUTHORIZED', reason, retryable: false },
})

// the report's broad rule: wild-* may register any identity at all
const BROAD = `
gateways:
  - match: wild-*
    devices: { patterns: ["*"] }
  - match: gateway-002
    devices: { patterns: ["{gateway}-sensor-*"] }
  - match: adopter
    devices: { patterns: ["*-own"] }
    adopt: true
`

describe('a gateway never becomes another gateway', () => {
  it('a broad rule names gateways: each is refused DEVICE_IS_A_GATEWAY, CSR or server key; the rest is issued', async () => {
    const pki = await createTestPki()
    for (const id of ['wild-a', 'wild-b', 'gateway-002']) await pki.makeDevice(id)
    const b = await started(pki, BROAD)
    const csr = await opensslCsr('/CN=gateway-002')
    const results = await batch(b, 'wild-a', 'takeover', [
      { deviceId: 'gateway-002' },
      { deviceId: 'wild-b', keyAlgorithm: 'Ed25519' },
      { deviceId: 'wild-a' },
      { deviceId: 'adopter' },
      { deviceId: 'plain-sensor' },
    ])
    for (const id of ['gateway-002', 'wild-b', 'wild-a', 'adopter']) {
      expect(results.get(id)).toMatchObject(denied('DEVICE_IS_A_GATEWAY'))
    }
    expect(results.get('plain-sensor')?.status).toBe('issued')
    const withCsr = await batch(b, 'wild-a', 'takeover-csr', [{ deviceId: 'gateway-002', csr: csr.csr }])
    expect(withCsr.get('gateway-002')).toMatchObject(denied('DEVICE_IS_A_GATEWAY'))
    expect(await registry(b, (r) => r.device('gateway-002'))).toBeUndefined()

    // the real gateway-002 registers itself and sends its batches as before
    const own = await connectDevice(b, 'gateway-002')
    await own.send({ requestId: 'own' })
    expect(await own.nextReply()).toMatchObject({ status: 'issued' })
    await own.end()
    const sensors = await batch(b, 'gateway-002', 'sensors', [{ deviceId: 'gateway-002-sensor-1' }])
    expect(sensors.get('gateway-002-sensor-1')?.status).toBe('issued')
  })

  it('an answer given before the policy made the device a gateway is not replayed after a restart', async () => {
    const pki = await createTestPki()
    await pki.makeDevice('hub-1')
    const csr = await opensslCsr('/CN=relay-7')
    const devices = [{ deviceId: 'relay-7', csr: csr.csr }]
    const before = await started(pki, 'gateways:\n  - match: hub-1\n    devices: { patterns: ["relay-*"] }\n')
    expect((await batch(before, 'hub-1', 'first', devices)).get('relay-7')?.status).toBe('issued')
    // the same batch again is replayed from the reply cache while the policy allows it
    expect((await batch(before, 'hub-1', 'first', devices)).get('relay-7')?.status).toBe('issued')
    await before.stop()
    // relay-7 is now a gateway: the retry finds its answer in the issued index, and is refused all the same
    const after = await started(
      pki,
      'gateways:\n  - match: hub-1\n    devices: { patterns: ["relay-*"] }\n  - match: relay-7\n',
    )
    expect((await batch(after, 'hub-1', 'first', devices)).get('relay-7')).toMatchObject(
      denied('DEVICE_IS_A_GATEWAY'),
    )
  })
})

describe.each(['refuse', 'allow'] as const)(
  'who holds a device decides (lifecycle.reRegistration=%s)',
  (policy) => {
    const sets = policy === 'refuse' ? [] : ['lifecycle.reRegistration=allow']

    it('a device that registered itself is adopted only by a rule with adopt: true', async () => {
      const pki = await createTestPki()
      for (const id of ['wild-a', 'adopter', 'meter-own']) await pki.makeDevice(id)
      const b = await started(pki, BROAD, sets)
      const device = await connectDevice(b, 'meter-own')
      await device.send({ requestId: 'self' })
      const own = await device.nextReply()
      await device.end()
      expect(own.status).toBe('issued')
      expect((await batch(b, 'wild-a', 'take', [{ deviceId: 'meter-own' }])).get('meter-own')).toMatchObject(
        denied('DEVICE_REGISTERS_ITSELF'),
      )
      const adopted = (await batch(b, 'adopter', 'adopt', [{ deviceId: 'meter-own' }])).get('meter-own')
      expect(adopted?.status).toBe('issued')
      const record = await registry(b, (r) => r.device('meter-own'))
      expect(record?.owner).toBe('adopter')
      expect(record?.certificates.map((c) => [c.state, c.registeredBy])).toEqual([
        ['active', 'adopter'],
        ['superseded', undefined],
      ])
      // the adopter now owns it: wild-a, without transfer, is refused as for any owned device
      expect(
        (await batch(b, 'wild-a', 'take-2', [{ deviceId: 'meter-own' }])).get('meter-own'),
      ).toMatchObject(denied('OWNED_BY_ANOTHER_GATEWAY'))
    })

    it("transfer: true takes another gateway's device; without it, OWNED_BY_ANOTHER_GATEWAY", async () => {
      const pki = await createTestPki()
      for (const id of ['gateway-003', 'gateway-004']) await pki.makeDevice(id)
      const b = await started(
        pki,
        `
gateways:
  - match: gateway-001
    devices: { patterns: ["{gateway}-sensor-*"] }
  - match: gateway-003
    devices: { patterns: ["gateway-001-sensor-*"] }
    transfer: true
  - match: gateway-004
    devices: { patterns: ["gateway-001-sensor-*"] }
`,
        sets,
      )
      const first = (await batch(b, 'gateway-001', 'mine', [{ deviceId: 'gateway-001-sensor-1' }])).get(
        'gateway-001-sensor-1',
      ) as GatewayMessage & DownstreamCredentials
      expect(first.status).toBe('issued')
      expect(
        (await batch(b, 'gateway-004', 'steal', [{ deviceId: 'gateway-001-sensor-1' }])).get(
          'gateway-001-sensor-1',
        ),
      ).toMatchObject(denied('OWNED_BY_ANOTHER_GATEWAY'))
      const moved = (await batch(b, 'gateway-003', 'move', [{ deviceId: 'gateway-001-sensor-1' }])).get(
        'gateway-001-sensor-1',
      )
      expect(moved?.status).toBe('issued')
      const record = await registry(b, (r) => r.device('gateway-001-sensor-1'))
      expect(record?.owner).toBe('gateway-003')
      expect(record?.certificates.map((c) => c.state)).toEqual(['active', 'superseded'])
      const audit = (await b.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(audit.filter((r) => r.identity === 'gateway-001-sensor-1').map((r) => r.event)).toEqual([
        'registered',
        'renewed',
      ])
      // the first owner has lost it
      expect(
        (await batch(b, 'gateway-001', 'back', [{ deviceId: 'gateway-001-sensor-1' }])).get(
          'gateway-001-sensor-1',
        ),
      ).toMatchObject(denied('OWNED_BY_ANOTHER_GATEWAY'))
    })
  },
)

describe('an offline gateway', () => {
  it('gets none of a batch answered while it was away, never a complete claiming replies it did not get', async () => {
    const pki = await createTestPki()
    const b = await started(
      pki,
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const keeper = await session(b, 'gateway-001', 'keeper')
    await keeper.client.subscribeAsync('registration/gateway-001/reply', { qos: 1 })
    await keeper.client.endAsync()
    // another connection of the gateway sends a batch of six (more than limits.maxQueuedRepliesPerIdentity)
    const csr = await opensslCsr('/CN=gateway-001-sensor-0')
    const devices = [
      { deviceId: 'gateway-001-sensor-0', csr: csr.csr },
      ...[1, 2, 3, 4, 5].map((i) => ({ deviceId: `gateway-001-sensor-${i}` })),
    ]
    const answered = await batch(b, 'gateway-001', 'away', devices)
    expect([...answered.values()].map((r) => r.status)).toEqual(Array(6).fill('issued'))

    // back online: a marker batch (refused at once) comes first, nothing of the batch answered while away
    const back = await session(b, 'gateway-001', 'keeper')
    await sendMarker(back)
    expect(back.messages.map((m) => `${m.requestId}:${m.status}`)).toEqual(['marker:rejected'])

    // the retry of the batch gets the same answers
    const retry = heard(back, (m) => m.status === 'complete')
    const body = { version: 1, extension: 'gateway/1', requestId: 'away', devices }
    await back.client.publishAsync('registration/request', JSON.stringify(body), { qos: 1 })
    await retry
    const again = byDevice(back.messages.filter((m) => m.requestId === 'away'))
    for (const [id, first] of answered) {
      expect(again.get(id)).toMatchObject({ status: 'issued', serialNumber: first.serialNumber })
    }
    expect(back.messages.at(-1)).toMatchObject({ status: 'complete', issued: 6, rejected: 0 })
    await back.client.endAsync()
  })
})

describe('a gateway that reconnects mid-batch', () => {
  it('gets no complete for the batch its earlier connection asked for; the retry gets everything', async () => {
    const pki = await createTestPki()
    const b = await started(
      pki,
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
      ['gateways.concurrency=1'],
    )
    // slow keys, one at a time: the batch is still being answered when the gateway is back
    const devices = [1, 2, 3].map((i) => ({ deviceId: `gateway-001-sensor-${i}`, keyAlgorithm: 'RSA-4096' }))
    const body = JSON.stringify({ version: 1, extension: 'gateway/1', requestId: 'blip', devices })
    const first = await session(b, 'gateway-001', 'gw')
    await first.client.subscribeAsync('registration/gateway-001/reply', { qos: 1 })
    const firstReply = new Promise<void>((resolve) => first.client.once('message', () => resolve()))
    await first.client.publishAsync('registration/request', body, { qos: 1 })
    await firstReply
    await first.client.endAsync(true)
    const answered = b.waitForLog('gateway batch answered')
    const back = await session(b, 'gateway-001', 'gw')
    await back.client.subscribeAsync('registration/gateway-001/reply', { qos: 1 })
    await answered
    await sendMarker(back)
    expect(back.messages.filter((m) => m.status === 'complete')).toEqual([])

    const retried = heard(back, (m) => m.status === 'complete')
    await back.client.publishAsync('registration/request', body, { qos: 1 })
    await retried
    const again = back.messages.filter((m) => m.requestId === 'blip')
    expect(again.at(-1)).toMatchObject({ status: 'complete', issued: 3, rejected: 0 })
    expect(new Set(again.filter((m) => m.status === 'issued').map((m) => m.deviceId)).size).toBe(3)
    await back.client.endAsync()
  })
})
