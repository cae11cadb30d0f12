import { randomUUID } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { RateLimiter } from '../common/rate-limiter.js'
import type { Lease, LeaseRefusal, RateLimit, SharedAnswer, SharedState } from './shared-state.js'

/** MAX_ANSWERS bounds the answers kept in memory (the reply cache has its own, usually lower, bound). */
const MAX_ANSWERS = 100_000

/**
 * MemoryState is the shared state of one process (the default): leases, answers and rate limits in memory.
 * It coordinates the requests of one process only; workers and replicas need RedisState.
 */
export class MemoryState implements SharedState {
  readonly shared = false
  readonly #now: () => number
  readonly #leases = new Map<string, { key: string; token: string; expiresAt: number }>()
  readonly #answers = new LRUCache<string, SharedAnswer>({ max: MAX_ANSWERS, ttlAutopurge: false })
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

  async answer(key: string): Promise<SharedAnswer | undefined> {
    return this.#answers.get(key)
  }

  async share(key: string, answer: SharedAnswer, ttlMs: number): Promise<void> {
    if (ttlMs > 0 && !this.#answers.has(key)) this.#answers.set(key, answer, { ttl: ttlMs })
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
    this.#answers.clear()
  }
}
