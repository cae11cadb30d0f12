import { LRUCache } from 'lru-cache'
import { TokenBucket } from './token-bucket.js'

/** LogBudgetOptions: each key may log `burst` lines at once, refilled at `perMinute`. */
export interface LogBudgetOptions {
  readonly burst: number
  readonly perMinute: number
  /** Keys tracked at once; past it the least recently seen are forgotten. */
  readonly maxKeys?: number
}

interface Account {
  readonly bucket: TokenBucket
  suppressed: number
}

/**
 * LogBudget bounds log lines per key (an identity) with THE token bucket: under abuse a key yields at most
 * `burst` lines, then `perMinute`, and the next line that is allowed carries how many were suppressed since.
 */
export class LogBudget {
  readonly #options: LogBudgetOptions
  readonly #accounts: LRUCache<string, Account>
  readonly #now: () => number

  constructor(options: LogBudgetOptions, now: () => number = Date.now) {
    this.#options = options
    this.#accounts = new LRUCache<string, Account>({ max: options.maxKeys ?? 10_000 })
    this.#now = now
  }

  /**
   * take returns undefined when the line must be suppressed, else the number of lines suppressed since the
   * last allowed one (0 in the quiet case), to be logged with it.
   */
  take(key: string): number | undefined {
    let account = this.#accounts.get(key)
    if (!account) {
      const { burst, perMinute } = this.#options
      account = { bucket: new TokenBucket({ burst, perSecond: perMinute / 60 }, this.#now), suppressed: 0 }
      this.#accounts.set(key, account)
    }
    if (account.bucket.take() > 0) {
      account.suppressed++
      return undefined
    }
    const suppressed = account.suppressed
    account.suppressed = 0
    return suppressed
  }
}
