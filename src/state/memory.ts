import { randomUUID } from 'node:crypto'
import { RateLimiter } from '../common/rate-limiter.js'
import type { Lease, LeaseRefusal, RateLimit, SharedState } from './shared-state.js'

/**
 * MemoryState is the shared state of one process (the default): leases and rate limits in memory.
 * It coordinates the requests of one process only; workers and replicas need RedisState.
 */
export class MemoryState implements SharedState {
  readonly #now: () => number
  readonly #leases = new Map<string, { key: string; token: string; expiresAt: number }>()
  readonly #limiters = new Map<string, RateLimiter>()

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  async acquire(identity: string, key: string, ttlMs: number): Promise<Lease | LeaseRefusal> {
    const held = this.#leases.get(identity)
    if (held && held.expiresAt > this.#now()) return { heldFor: held.key }
    const token = randomUUID()
    this.#leases.set(identity, { key, token, expiresAt: this.#now() + ttlMs })
    return { identity, key, token }
  }

  async renew(lease: Lease, ttlMs: number): Promise<boolean> {
    const held = this.#leases.get(lease.identity)
    if (held?.token !== lease.token) return false
    held.expiresAt = this.#now() + ttlMs
    return true
  }

  async release(lease: Lease): Promise<void> {
    if (this.#leases.get(lease.identity)?.token === lease.token) this.#leases.delete(lease.identity)
  }

  async take(identity: string, limit: RateLimit): Promise<number> {
    const name = `${limit.burst}/${limit.perMinute}`
    let limiter = this.#limiters.get(name)
    if (!limiter) {
      limiter = new RateLimiter(limit, this.#now)
      this.#limiters.set(name, limiter)
    }
    return limiter.take(identity)
  }

  async close(): Promise<void> {
    this.#leases.clear()
  }
}
