import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { rawConnect } from '../support/raw-mqtt.js'

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge([
    'registration.rateLimit.burst=3',
    'registration.rateLimit.perMinute=1',
    'limits.maxConnectionsPerIdentity=2',
    'limits.maxIdleSeconds=1',
  ])
})
afterAll(() => bridge?.stop())

const lines = (msg: string): { msg: string; suppressed?: number }[] =>
  bridge.logs.map((l) => JSON.parse(l) as { msg: string; suppressed?: number }).filter((l) => l.msg === msg)

describe('abuse budgets', () => {
  it('invalid requests spend the rate limit like valid ones', async () => {
    const device = await connectDevice(bridge, 'device-001')
    for (let i = 0; i < 3; i++) {
      await device.send('not json')
      expect(await device.nextReply()).toMatchObject({ error: { code: 'MALFORMED_REQUEST' } })
    }
    await device.send({ requestId: 'valid-but-late' })
    expect(await device.nextReply()).toMatchObject({ error: { code: 'RATE_LIMITED', retryable: true } })
    await device.end()
  })

  it('thousands of bad requests yield a bounded number of log lines, with a count', async () => {
    const device = await connectDevice(bridge, 'device-002')
    const before = lines('registration rejected').length
    for (let i = 0; i < 2000; i++) device.client.publish('registration/request', '{', { qos: 0 })
    await device.send({ requestId: 'last' })
    while ((await device.nextReply()).requestId !== 'last');
    const logged = lines('registration rejected').length - before
    expect(logged).toBeGreaterThan(0)
    expect(logged).toBeLessThanOrEqual(11)
    await device.end()
  })

  it('one SUBSCRIBE with thousands of refused filters yields a bounded number of log lines', async () => {
    const device = await connectDevice(bridge, 'device-003', { subscribe: false })
    const before = lines('subscription refused').length
    const filters = Array.from({ length: 3000 }, (_, i) => `r/d-${i}/reply`) // 45 KiB, under the packet limit
    // MQTT.js rejects a SUBACK of failures; the packet carries the return codes
    const suback = await device.client.subscribeAsync(filters, { qos: 1 }).then(
      () => undefined,
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    )
    expect(suback).toHaveLength(3000)
    expect(suback?.every((code) => code === 128)).toBe(true)
    const logged = lines('subscription refused').length - before
    expect(logged).toBeGreaterThan(0)
    expect(logged).toBeLessThanOrEqual(11)
    await device.end()
  })
})

describe('connections per identity', () => {
  it('past limits.maxConnectionsPerIdentity a connection is refused with CONNACK 3; a takeover is not extra', async () => {
    const tls = tlsFor(bridge, bridge.pki.device('device-004'))
    const options = {
      cert: tls.certPem,
      key: tls.keyPem,
      ca: tls.caPem,
      reconnectPeriod: 0,
      protocolVersion: 4 as const,
    }
    const a = await mqtt.connectAsync(bridge.url, { ...options, clientId: 'a' })
    const b = await mqtt.connectAsync(bridge.url, { ...options, clientId: 'b' })
    const refused = await mqtt.connectAsync(bridge.url, { ...options, clientId: 'c' }).then(
      (c) => c.endAsync().then(() => undefined),
      (err: { code?: number }) => err.code,
    )
    expect(refused).toBe(3)
    // the same client id again takes over that session: allowed, the old connection is closed
    const aClosed = new Promise<void>((resolve) => a.once('close', () => resolve()))
    const a2 = await mqtt.connectAsync(bridge.url, { ...options, clientId: 'a' })
    await aClosed
    // other identities are unaffected
    const other = await connectDevice(bridge, 'device-005')
    await other.send({})
    expect(await other.nextReply()).toMatchObject({ status: 'issued' })
    await Promise.all([a.endAsync(true), b.endAsync(), a2.endAsync(), other.end()])
  })
})

describe('idle connections', () => {
  it('keepalive 0 is closed after limits.maxIdleSeconds without traffic', async () => {
    const raw = await rawConnect(bridge, 'gateway-001')
    raw.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: 'k0',
      clean: true,
      keepalive: 0,
    })
    expect(await raw.nextPacket()).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(await raw.nextPacket()).toBeNull()
  })
})
