import { describe, expect, it } from 'vitest'
import { sleep, untilAborted } from '../../../src/common/abortable.js'
import { Backoff } from '../../../src/common/backoff.js'
import { LogBudget } from '../../../src/common/log-budget.js'
import { TokenBucket } from '../../../src/common/token-bucket.js'

describe('TokenBucket', () => {
  it('allows a burst, then tells how long until the next token', () => {
    let now = 0
    const bucket = new TokenBucket({ burst: 2, perSecond: 4 }, () => now)
    expect(bucket.take()).toBe(0)
    expect(bucket.take()).toBe(0)
    expect(bucket.take()).toBe(250)
    now += 250
    expect(bucket.take()).toBe(0)
    expect(bucket.full).toBe(false)
    now += 10_000
    expect(bucket.full).toBe(true)
  })
})

describe('Backoff', () => {
  it('grows exponentially to its ceiling, honours a longer Retry-After and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0 })
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1_000])
    expect(b.next(3_000)).toBe(3_000)
    b.reset()
    expect(b.next()).toBe(100)
  })

  it('draws jitter below the ceiling', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.5 }, () => 1)
    expect(b.next()).toBe(50)
  })
})

describe('abortable waits', () => {
  it('sleep rejects with the reason as soon as the signal aborts', async () => {
    const controller = new AbortController()
    const slept = sleep(60_000, controller.signal)
    controller.abort(new Error('stop'))
    await expect(slept).rejects.toThrow('stop')
  })

  it('untilAborted settles with the promise, runs onAbort on abort, and rejects at once if already aborted', async () => {
    const controller = new AbortController()
    await expect(untilAborted(Promise.resolve(7), controller.signal)).resolves.toBe(7)
    let cancelled = false
    const never = new Promise<never>(() => {})
    const waiting = untilAborted(never, controller.signal, () => {
      cancelled = true
    })
    controller.abort(new Error('gone'))
    await expect(waiting).rejects.toThrow('gone')
    expect(cancelled).toBe(true)
    await expect(untilAborted(Promise.resolve(1), controller.signal)).rejects.toThrow('gone')
  })
})

describe('LogBudget', () => {
  it('allows a burst per key, then suppresses, and reports the count on the next allowed line', () => {
    let now = 0
    const budget = new LogBudget({ burst: 2, perMinute: 1 }, () => now)
    expect([budget.take('a'), budget.take('a')]).toEqual([0, 0])
    for (let i = 0; i < 1000; i++) expect(budget.take('a')).toBeUndefined()
    expect(budget.take('b')).toBe(0) // keys are independent
    now += 60_000
    expect(budget.take('a')).toBe(1000)
    expect(budget.take('a')).toBeUndefined()
  })
})
