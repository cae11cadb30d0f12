/** RateLimitOptions: each identity may make `burst` requests at once, refilled at `perMinute`. */
export interface RateLimitOptions {
  readonly burst: number
  readonly perMinute: number
}

interface Bucket {
  tokens: number
  updatedAt: number
}

/** MAX_TRACKED bounds memory: past it the oldest buckets are forgotten (they would be nearly full anyway). */
const MAX_TRACKED = 100_000

/** RateLimiter is a per-identity token bucket. */
export class RateLimiter {
  readonly #options: RateLimitOptions
  readonly #buckets = new Map<string, Bucket>()
  readonly #now: () => number

  constructor(options: RateLimitOptions, now: () => number = Date.now) {
    this.#options = options
    this.#now = now
  }

  /** take spends one token; it returns 0 when allowed, else the seconds until a token is available. */
  take(identity: string): number {
    const now = this.#now()
    const { burst, perMinute } = this.#options
    const bucket = this.#buckets.get(identity) ?? { tokens: burst, updatedAt: now }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) * perMinute) / 60_000)
    bucket.updatedAt = now
    this.#buckets.delete(identity) // re-insert: Map order is then least recently used first
    this.#buckets.set(identity, bucket)
    if (this.#buckets.size > MAX_TRACKED) {
      const oldest = this.#buckets.keys().next().value
      if (oldest !== undefined) this.#buckets.delete(oldest)
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - bucket.tokens) * 60) / perMinute)
  }
}
