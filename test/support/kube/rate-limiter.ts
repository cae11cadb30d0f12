/**
 * RateLimiter is the emulated controller's client-side limit (client-go's token bucket: `qps`, `burst`); the
 * emulation does not import the bridge's own. `writes` counts the tokens spent.
 */
export class RateLimiter {
  readonly #limit: () => { qps: number; burst: number }
  /** Full (burst) until first used: the limit is read lazily. */
  #tokens: number | undefined
  #refilledAt = performance.now()
  writes = 0

  constructor(limit: () => { qps: number; burst: number }) {
    this.#limit = limit
  }

  /** wait spends a token and returns 0, or returns the milliseconds until one is available. */
  wait(): number {
    const now = performance.now()
    const { qps, burst } = this.#limit()
    this.#tokens = Math.min(burst, (this.#tokens ?? burst) + ((now - this.#refilledAt) * qps) / 1000)
    this.#refilledAt = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      this.writes++
      return 0
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / qps)
  }
}
