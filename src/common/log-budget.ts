import { LRUCache } from 'lru-cache'
import { RateLimiter, type RateLimitOptions } from './rate-limiter.js'

/** MAX_KEYS bounds memory: past it the least recently seen keys are forgotten. */
const MAX_KEYS = 10_000

/**
 * LogBudget bounds log lines per key (an identity) with a RateLimiter: under abuse a key yields at most `burst`
 * lines, then `perMinute`, and the next line that is allowed carries how many were suppressed since.
 */
export class LogBudget {
  readonly #limiter: RateLimiter
  readonly #suppressed = new LRUCache<string, number>({ max: MAX_KEYS })

  constructor(options: RateLimitOptions, now: () => number = Date.now) {
    this.#limiter = new RateLimiter(options, now, MAX_KEYS)
  }

  /**
   * take returns undefined when the line must be suppressed, else the number of lines suppressed since the
   * last allowed one (0 in the quiet case), to be logged with it.
   */
  take(key: string): number | undefined {
    const suppressed = this.#suppressed.get(key) ?? 0
    if (this.#limiter.take(key) > 0) {
      this.#suppressed.set(key, suppressed + 1)
      return undefined
    }
    this.#suppressed.delete(key)
    return suppressed
  }
}
