import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StateUnavailableError, UNAVAILABLE_MESSAGES } from '../../../src/protocol/errors.js'
import { MemoryState } from '../../../src/state/memory.js'
import { RedisState } from '../../../src/state/redis.js'
import { isLease, type SharedState } from '../../../src/state/shared-state.js'
import { startRedis, type TestRedis } from '../../support/redis.js'

let redis: TestRedis
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis.stop()
})

let n = 0
const connect = (prefix: string): Promise<RedisState> =>
  RedisState.connect({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000 })

describe.each(['memory', 'redis'] as const)('%s state', (kind) => {
  // two handles on the same state: two processes for Redis, the same object in memory
  const open = async (): Promise<[SharedState, SharedState]> => {
    if (kind === 'memory') {
      const s = new MemoryState()
      return [s, s]
    }
    const prefix = `t${n++}:`
    return [await connect(prefix), await connect(prefix)]
  }

  it('a lease is held by one holder at a time, says for which request, and expires', async () => {
    const [a, b] = await open()
    const lease = await a.acquire('dev-1', 'k1', 200)
    expect(isLease(lease)).toBe(true)
    expect(await b.acquire('dev-1', 'k2', 200)).toEqual({ heldFor: 'k1' })
    await expect.poll(async () => isLease(await b.acquire('dev-1', 'k2', 5000)), { interval: 50 }).toBe(true)
    // the first holder lost it: it can neither renew nor release the new holder's lease
    if (isLease(lease)) {
      expect(await a.renew(lease, 1000)).toBe(false)
      await a.release(lease)
    }
    expect(await a.acquire('dev-1', 'k3', 200)).toEqual({ heldFor: 'k2' })
  })

  it('a renewed lease outlives its first lifetime; a released one is free at once', async () => {
    const [a, b] = await open()
    const lease = await a.acquire('dev-2', 'k', 300)
    if (!isLease(lease)) throw new Error('not acquired')
    expect(await a.renew(lease, 60_000)).toBe(true)
    expect(await b.acquire('dev-2', 'other', 300)).toEqual({ heldFor: 'k' })
    await a.release(lease)
    expect(isLease(await b.acquire('dev-2', 'other', 300))).toBe(true)
  })

  it('rate limits hold across handles', async () => {
    const [a, b] = await open()
    const limit = { burst: 3, perMinute: 1 }
    const waits = [
      await a.take('dev-3', limit),
      await b.take('dev-3', limit),
      await a.take('dev-3', limit),
      await b.take('dev-3', limit),
    ]
    expect(waits.slice(0, 3)).toEqual([0, 0, 0])
    expect(waits[3]).toBeGreaterThan(50)
    expect(waits[3]).toBeLessThanOrEqual(60)
    expect(await a.take('dev-4', limit)).toBe(0) // per identity
  })
})

describe('redis state', () => {
  it('fails fast with a retryable error while Redis is down, and works again once it is back', async () => {
    const state = await connect('down:')
    await redis.stop()
    const failure = await state.acquire('dev', 'k', 1000).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(StateUnavailableError)
    expect((failure as StateUnavailableError).retryable).toBe(true)
    // the device is told the stable message; the driver's text stays in the cause, for the log
    expect((failure as StateUnavailableError).message).toBe(UNAVAILABLE_MESSAGES.state)
    expect(String((failure as StateUnavailableError).cause)).toMatch(
      /ECONNREFUSED|Connection|connect|Stream/i,
    )
    await redis.restart()
    await expect
      .poll(() => state.take('dev', { burst: 1, perMinute: 1 }).catch(() => -1), { interval: 50 })
      .toBe(0)
    await state.close()
  })

  it('refuses to start when Redis cannot be reached', async () => {
    await expect(
      RedisState.connect({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:', commandTimeoutMs: 500 }),
    ).rejects.toThrow(/state.redis.url: cannot reach Redis/)
  })
})
