import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Counts, DeviceCounts } from '../../../src/observability/device-counts.js'
import { createMetrics } from '../../../src/observability/metrics.js'

const ZERO: Counts = { active: 0, expiring: 0, expired: 0, pending: 0, revoked: 0 }

/** counter is a count() whose answers the test releases one by one. */
function counter() {
  const pending: ((counts: Counts) => void)[] = []
  let calls = 0
  return {
    count: () =>
      new Promise<Counts>((resolve) => {
        calls++
        pending.push(resolve)
      }),
    get calls() {
      return calls
    },
    /** answer releases the oldest count in progress and lets its continuations run. */
    async answer(counts: Counts) {
      pending.shift()?.(counts)
      await vi.advanceTimersByTimeAsync(0)
    },
  }
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('DeviceCounts', () => {
  it('a scrape reads the last counts: it waits for the first count only, and never counts itself', async () => {
    const c = counter()
    const counts = new DeviceCounts({
      count: c.count,
      intervalMs: 30_000,
      minSpacingMs: 1_000,
      spacingFactor: 20,
      onError: () => {},
    })
    const metrics = createMetrics({
      replyCacheEntries: () => 0,
      ready: () => true,
      certificates: () => ({ listener: new Date(0) }),
      devices: counts,
    })
    counts.start()
    const first = metrics.registry.getSingleMetricAsString('mqtt_registration_bridge_devices')
    await c.answer({ ...ZERO, active: 3 })
    expect(await first).toContain('mqtt_registration_bridge_devices{state="active"} 3')
    for (let i = 0; i < 20; i++) await metrics.registry.metrics()
    expect(c.calls).toBe(1)
    await counts.close()
  })

  it('changes coalesce into one count, no sooner than the spacing after the last one began; the interval counts too', async () => {
    const c = counter()
    const counts = new DeviceCounts({
      count: c.count,
      intervalMs: 30_000,
      minSpacingMs: 1_000,
      spacingFactor: 20,
      onError: () => {},
    })
    counts.start()
    expect(c.calls).toBe(1)
    for (let i = 0; i < 50; i++) counts.changed() // while the first count runs
    await vi.advanceTimersByTimeAsync(200) // the count takes 200 ms: the spacing becomes 20 × 200 ms = 4 s
    await c.answer(ZERO)
    await vi.advanceTimersByTimeAsync(3_799)
    expect(c.calls).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(c.calls).toBe(2) // one count for fifty changes
    await c.answer({ ...ZERO, active: 1 })
    expect(await counts.current()).toEqual({ ...ZERO, active: 1 })
    for (let i = 0; i < 50; i++) counts.changed()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(c.calls).toBe(3)
    await c.answer(ZERO)
    // nothing changes: the interval alone counts, every 30 s
    await vi.advanceTimersByTimeAsync(24_999) // 5 s have passed; the interval's first tick is at 30 s
    expect(c.calls).toBe(3)
    await vi.advanceTimersByTimeAsync(1)
    expect(c.calls).toBe(4)
    await c.answer(ZERO)
    await counts.close()
  })

  it('a failed count keeps the last counts and says so', async () => {
    const errors: unknown[] = []
    let fail = false
    const counts = new DeviceCounts({
      count: async () => {
        if (fail) throw new Error('registry down')
        return { ...ZERO, revoked: 2 }
      },
      intervalMs: 30_000,
      minSpacingMs: 0,
      spacingFactor: 0,
      onError: (err) => errors.push(err),
    })
    counts.start()
    expect(await counts.current()).toEqual({ ...ZERO, revoked: 2 })
    fail = true
    await vi.advanceTimersByTimeAsync(30_000)
    expect(errors).toHaveLength(1)
    expect(await counts.current()).toEqual({ ...ZERO, revoked: 2 })
    await counts.close()
  })
})
