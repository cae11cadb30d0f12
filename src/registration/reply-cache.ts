import type { IssuedReply } from '../protocol/messages.js'

/** ReplyCacheOptions bound how long and how many issued replies are kept in memory (never on disk). */
export interface ReplyCacheOptions {
  readonly ttlSeconds: number
  readonly maxEntries: number
}

interface Entry {
  readonly reply: IssuedReply
  readonly expiresAt: number
}

/**
 * ReplyCache keeps issued replies so a repeated request gets the same answer without a second issuance.
 * Entries may hold a generated private key, so they live only in memory, expire, and are bounded.
 */
export class ReplyCache {
  readonly #options: ReplyCacheOptions
  readonly #entries = new Map<string, Entry>()
  readonly #now: () => number

  constructor(options: ReplyCacheOptions, now: () => number = Date.now) {
    this.#options = options
    this.#now = now
  }

  /** get returns a live entry, dropping it if expired. */
  get(key: string): IssuedReply | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.reply
  }

  /** set stores a reply; the oldest entries go first when the cache is full. */
  set(key: string, reply: IssuedReply): void {
    if (this.#options.ttlSeconds <= 0 || this.#options.maxEntries <= 0) return
    this.#entries.delete(key)
    this.#entries.set(key, { reply, expiresAt: this.#now() + this.#options.ttlSeconds * 1000 })
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next().value
      if (oldest === undefined) break
      this.#entries.delete(oldest)
    }
  }

  /** clear forgets every entry (at shutdown, so keys do not linger). */
  clear(): void {
    this.#entries.clear()
  }
}
