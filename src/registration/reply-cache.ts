import { LRUCache } from 'lru-cache'
import type { IssuedReply } from '../protocol/messages.js'

/** ReplyCacheOptions bound how long and how many issued replies are kept in memory (never on disk). */
export interface ReplyCacheOptions {
  readonly ttlSeconds: number
  readonly maxEntries: number
}

/**
 * ReplyCache keeps issued replies so a repeated request gets the same answer without a second issuance.
 * Entries may hold a generated private key, so they live only in memory, expire, and are bounded.
 */
export class ReplyCache {
  readonly #entries: LRUCache<string, IssuedReply> | undefined

  constructor(options: ReplyCacheOptions, now: () => number = Date.now) {
    if (options.ttlSeconds <= 0 || options.maxEntries <= 0) return
    this.#entries = new LRUCache<string, IssuedReply>({
      max: options.maxEntries,
      ttl: options.ttlSeconds * 1000,
      ttlAutopurge: false,
      perf: { now },
    })
  }

  /** get returns a live entry (expired entries are dropped on read). */
  get(key: string): IssuedReply | undefined {
    return this.#entries?.get(key)
  }

  /** set stores a reply; the least recently used entries go first when the cache is full. */
  set(key: string, reply: IssuedReply): void {
    this.#entries?.set(key, reply)
  }

  /** size is the number of entries held (some may have expired and not yet been read). */
  get size(): number {
    return this.#entries?.size ?? 0
  }

  /** clear forgets every entry (at shutdown, so keys do not linger). */
  clear(): void {
    this.#entries?.clear()
  }
}
