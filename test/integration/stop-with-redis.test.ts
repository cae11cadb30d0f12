import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge } from '../support/bridge.js'
import { clientCounter, startRedis, type TestRedis } from '../support/redis.js'

/**
 * A bridge on Redis (shared state and MQTT sessions) stops cleanly whether Redis answers or not: with Redis
 * up every connection it opened is closed; with Redis down the stop still ends (it used to wait forever for
 * the MQTT emitter's QUIT, so a worker ignored SIGTERM until the stop bound killed it).
 */
let redis: TestRedis
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.stop()
})

describe('stopping a bridge on Redis', () => {
  it('with Redis up: every connection the bridge opened is closed', async () => {
    const admin = clientCounter(redis.url)
    const clients = admin.count
    const before = await clients()
    const bridge = await startTestBridge([`state.redis.url=${redis.url}`, 'state.redis.keyPrefix=up:'])
    expect(await clients()).toBeGreaterThan(before)
    await bridge.stop()
    await expect.poll(clients, { timeout: 5_000 }).toBe(before)
    admin.close()
  })

  it('with Redis down: the stop ends (the test timeout bounds it)', async () => {
    const bridge = await startTestBridge([`state.redis.url=${redis.url}`, 'state.redis.keyPrefix=down:'])
    await redis.stop()
    await bridge.stop()
    await redis.restart()
  })
})
