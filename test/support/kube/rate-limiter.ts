/**
 * RateLimiter is one client-go client's client-side limit (its token bucket: `qps`, `burst`, full at the
 * start); the emulation does not import the bridge's own. client-go's `Wait` reserves a token per API request
 * and blocks the caller until the reservation is due (golang.org/x/time/rate), so callers are served in turn.
 */
export class RateLimiter {
  readonly #limit: () => { qps: number; burst: number }
  /** Full (burst) until first used: the limit is read lazily. May go below zero: tokens reserved ahead. */
  #tokens: number | undefined
  #refilledAt = performance.now()

  constructor(limit: () => { qps: number; burst: number }) {
    this.#limit = limit
  }

  /** reserve takes a token for one request and returns the milliseconds until the request may be sent (0: now). */
  reserve(): number {
    const now = performance.now()
    const { qps, burst } = this.#limit()
    this.#tokens = Math.min(burst, (this.#tokens ?? burst) + ((now - this.#refilledAt) * qps) / 1000)
    this.#refilledAt = now
    this.#tokens -= 1
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / qps)
  }
}
