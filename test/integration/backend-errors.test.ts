import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UNAVAILABLE_MESSAGES } from '../../src/protocol/errors.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { connectGateway, writePolicy } from '../support/gateway.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'
import { startRedis, type TestRedis } from '../support/redis.js'

/**
 * Every path that turns a backend failure into a reply — the shared state (a real redis-server), the registry
 * (a real PostgreSQL), for a device's own request and for a device of a gateway batch — tells the device the
 * stable, documented message; the driver's own text (addresses, ECONNREFUSED, SQL) goes to the log, as
 * `detail`, without a stack: an expected rejection is not a bug.
 */
let redis: TestRedis
let postgres: TestPostgres
let bridge: TestBridge

beforeAll(async () => {
  ;[redis, postgres] = await Promise.all([startRedis(), startPostgres()])
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([
    `state.redis.url=${redis.url}`,
    `state.postgres.url=${postgres.url}`,
    'state.redis.commandTimeoutMs=500',
    `gateways.policyFile=${policy}`,
  ])
  await Promise.all(['pg-down-1', 'redis-down-1'].map((id) => bridge.pki.makeDevice(id)))
}, 60_000)
afterAll(async () => {
  await bridge?.stop()
  await redis?.stop()
  await postgres?.stop()
})

/** DRIVER_TEXT is what a driver's message looks like; none of it may reach a device. */
const DRIVER_TEXT = /ECONN|127\.0\.0\.1|connect|terminated|Connection|timeout|Stream|writeable|SELECT|INSERT/i

/** rejectionLines are the log lines of rejections with this code logged since `from`. */
const rejectionLines = (from: number, code: string): Record<string, unknown>[] =>
  bridge.logs
    .slice(from)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => /rejected$/.test(String(l.msg)) && l.code === code)

function expectLoggedWithoutStack(lines: Record<string, unknown>[]): void {
  expect(lines.length).toBeGreaterThan(0)
  for (const line of lines) {
    expect(line.level).toBe(30) // info: expected
    expect(JSON.stringify(line)).not.toMatch(/"stack"|\n\s+at /)
    expect(String(line.detail)).toMatch(DRIVER_TEXT) // the operator gets the detail
  }
}

describe('a backend failure reaches devices as a stable message, and operators as detail', () => {
  it('the registry (PostgreSQL) down: a device request and a gateway device', async () => {
    const from = bridge.logs.length
    const device = await connectDevice(bridge, 'pg-down-1')
    const gateway = await connectGateway(bridge, 'gateway-001')
    await postgres.stop()
    await device.send({ requestId: 'while-pg-down' })
    const reply = await device.nextReply()
    expect(reply).toEqual({
      version: 1,
      status: 'rejected',
      requestId: 'while-pg-down',
      error: { code: 'ISSUER_UNAVAILABLE', message: UNAVAILABLE_MESSAGES.registry, retryable: true },
    })
    const replies = await gateway.batch({
      requestId: 'b-pg-down',
      devices: [{ deviceId: 'gateway-001-sensor-1' }],
    })
    const rejected = replies.filter((r) => r.status === 'rejected')
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) {
      expect(r.error).toMatchObject({ code: 'ISSUER_UNAVAILABLE', message: UNAVAILABLE_MESSAGES.registry })
    }
    expect(JSON.stringify([reply, replies])).not.toMatch(DRIVER_TEXT)
    expectLoggedWithoutStack(rejectionLines(from, 'ISSUER_UNAVAILABLE'))
    await device.end()
    await gateway.end()
  })

  it('the shared state (Redis) down: the rejection is logged with the detail and no stack', async () => {
    // the reply itself cannot reach the device while Redis (the MQTT backend) is down; the message a device is
    // told is checked against a real stopped Redis in test/unit/state/shared-state.test.ts
    const from = bridge.logs.length
    const device = await connectDevice(bridge, 'redis-down-1')
    await redis.stop()
    await device.send({ requestId: 'while-redis-down' })
    await expect.poll(() => rejectionLines(from, 'ISSUER_UNAVAILABLE').length, { timeout: 10_000 }).toBe(1)
    expectLoggedWithoutStack(rejectionLines(from, 'ISSUER_UNAVAILABLE'))
    await redis.restart()
    await device.end()
  })
})
