import { LRUCache } from 'lru-cache'
import { TokenBucket } from './token-bucket.js'

/** RateLimitOptions: each identity may make `burst` requests at once, refilled at `perMinute`. */
export interface RateLimitOptions {
  readonly burst: number
  readonly perMinute: number
}

/** RateLimiter is a per-identity token bucket. */
export class RateLimiter {
  readonly #options: RateLimitOptions
  readonly #buckets: LRUCache<string, TokenBucket>
  readonly #now: () => number

  /** `maxTracked` bounds memory: past it the least recently seen buckets are forgotten (nearly full anyway). */
  constructor(options: RateLimitOptions, now: () => number = Date.now, maxTracked = 100_000) {
    this.#options = options
    this.#buckets = new LRUCache({ max: maxTracked })
    this.#now = now
  }

  /** take spends one token; it returns 0 when allowed, else the seconds until a token is available. */
  take(identity: string): number {
    let bucket = this.#buckets.get(identity)
    if (!bucket) {
      const { burst, perMinute } = this.#options
      bucket = new TokenBucket({ burst, perSecond: perMinute / 60 }, this.#now)
      this.#buckets.set(identity, bucket)
    }
    return Math.ceil(bucket.take() / 1000)
  }
}
