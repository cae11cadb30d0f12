import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'
import { startRedis, type TestRedis } from '../support/redis.js'

/**
 * The shared state (a real redis-server) and the registry (a real PostgreSQL) are readiness conditions: while
 * either is unreachable /readyz answers 503 with the reason, and a request it catches is answered
 * ISSUER_UNAVAILABLE (retryable), never left unanswered nor told INTERNAL_ERROR.
 */
let redis: TestRedis
let postgres: TestPostgres
let bridge: TestBridge

beforeAll(async () => {
  ;[redis, postgres] = await Promise.all([startRedis(), startPostgres()])
  bridge = await startTestBridge([
    `state.redis.url=${redis.url}`,
    `state.postgres.url=${postgres.url}`,
    'state.redis.commandTimeoutMs=500',
  ])
}, 60_000)
afterAll(async () => {
  await bridge?.stop()
  await redis?.stop()
  await postgres?.stop()
})

async function readyz(): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/readyz`)
  return { status: res.status, body: await res.text() }
}

async function readyGauge(): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/metrics`)).text()
  return /^mqtt_registration_bridge_ready (\d)$/m.exec(text)?.[1]
}

describe('shared state and registry in readiness', () => {
  it('Redis down: /readyz 503 naming it, the ready gauge 0; back: ready again', async () => {
    await expect.poll(readyz, { timeout: 10_000 }).toEqual({ status: 200, body: 'ok\n' })
    await redis.stop()
    await expect
      .poll(readyz, { timeout: 10_000 })
      .toEqual({ status: 503, body: 'not ready\nthe shared state (Redis) is unreachable\n' })
    expect(await readyGauge()).toBe('0')
    await redis.restart()
    await expect.poll(readyz, { timeout: 15_000 }).toEqual({ status: 200, body: 'ok\n' })
    expect(await readyGauge()).toBe('1')
  })

  it('PostgreSQL down: /readyz 503 naming it, and a request is answered ISSUER_UNAVAILABLE (retryable)', async () => {
    await bridge.pki.makeDevice('pg-down-1')
    const device = await connectDevice(bridge, 'pg-down-1')
    await postgres.stop()
    await expect
      .poll(readyz, { timeout: 10_000 })
      .toEqual({ status: 503, body: 'not ready\nthe registry (PostgreSQL) is unreachable\n' })
    await device.send({ requestId: 'while-pg-down' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUER_UNAVAILABLE', retryable: true },
    })
    await device.end()
  })
})
