/** TokenBucketOptions: `burst` tokens at most, refilled at `perSecond`. */
export interface TokenBucketOptions {
  readonly burst: number
  readonly perSecond: number
}

/** TokenBucket is the one rate-limiting mechanism in the bridge (API throttle and per-identity rate limits). */
export class TokenBucket {
  readonly #options: TokenBucketOptions
  readonly #now: () => number
  #tokens: number
  #updatedAt: number

  constructor(options: TokenBucketOptions, now: () => number = Date.now) {
    this.#options = options
    this.#now = now
    this.#tokens = options.burst
    this.#updatedAt = now()
  }

  #refill(): void {
    const now = this.#now()
    const { burst, perSecond } = this.#options
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#updatedAt) * perSecond) / 1000)
    this.#updatedAt = now
  }

  /** take spends one token and returns 0, or returns the milliseconds until one is available (spending none). */
  take(): number {
    this.#refill()
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / this.#options.perSecond)
  }

  /** full is true when the bucket has refilled completely (it can then be forgotten). */
  get full(): boolean {
    this.#refill()
    return this.#tokens >= this.#options.burst
  }
}
