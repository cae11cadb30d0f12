import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { StateUnavailableError } from '../protocol/errors.js'
import { ACQUIRE, RELEASE, RENEW, TAKE } from './redis-scripts.js'
import type { Lease, LeaseRefusal, RateLimit, SharedState } from './shared-state.js'

/** RedisStateOptions: where Redis is, the prefix of every key, and how long one command may take. */
export interface RedisStateOptions {
  readonly url: string
  readonly keyPrefix: string
  readonly commandTimeoutMs: number
}

interface Scripts {
  mrbAcquire(lease: string, token: string, key: string, ttlMs: number): Promise<string | null>
  mrbRenew(lease: string, value: string, ttlMs: number): Promise<number>
  mrbRelease(lease: string, value: string): Promise<number>
  mrbTake(bucket: string, burst: number, perMs: number): Promise<number>
}

/** redisClient makes an ioredis client that fails commands at once while disconnected (never queues them). */
export function redisClient(url: string, commandTimeoutMs: number): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  })
}

/**
 * RedisState is the shared state of every process and replica, in Redis: leases are keys with a PX expiry
 * (a dead holder's lease expires), rate limits are token buckets updated by one Lua script on Redis' clock.
 * Answers are not kept here: the registry is their record, and a private key never leaves its process.
 */
export class RedisState implements SharedState {
  readonly #redis: Redis & Scripts
  readonly #prefix: string

  private constructor(redis: Redis, prefix: string) {
    redis.defineCommand('mrbAcquire', { numberOfKeys: 1, lua: ACQUIRE })
    redis.defineCommand('mrbRenew', { numberOfKeys: 1, lua: RENEW })
    redis.defineCommand('mrbRelease', { numberOfKeys: 1, lua: RELEASE })
    redis.defineCommand('mrbTake', { numberOfKeys: 1, lua: TAKE })
    this.#redis = redis as Redis & Scripts
    this.#prefix = prefix
  }

  /** connect reaches Redis once (a bridge that cannot reach it at start does not start), then reconnects as needed. */
  static async connect(options: RedisStateOptions): Promise<RedisState> {
    const redis = redisClient(options.url, options.commandTimeoutMs)
    redis.on('error', () => {}) // each command reports its own failure; ioredis keeps reconnecting
    try {
      await redis.connect()
      await redis.ping()
    } catch (err) {
      redis.disconnect()
      // for the operator starting the bridge, never on the wire
      throw new Error(`state.redis.url: cannot reach Redis (${(err as Error).message})`, { cause: err })
    }
    return new RedisState(redis, options.keyPrefix)
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command()
    } catch (err) {
      throw new StateUnavailableError('state', { cause: err })
    }
  }

  acquire(identity: string, key: string, ttlMs: number): Promise<Lease | LeaseRefusal> {
    const token = randomUUID()
    return this.#run(async () => {
      const held = await this.#redis.mrbAcquire(this.#lease(identity), token, key, ttlMs)
      return held === null ? { identity, key, token } : { heldFor: held.slice(held.indexOf(' ') + 1) }
    })
  }

  renew(lease: Lease, ttlMs: number): Promise<boolean> {
    return this.#run(async () => {
      const renewed = await this.#redis.mrbRenew(this.#lease(lease.identity), leaseValue(lease), ttlMs)
      return renewed === 1
    })
  }

  release(lease: Lease): Promise<void> {
    return this.#run(async () => {
      await this.#redis.mrbRelease(this.#lease(lease.identity), leaseValue(lease))
    })
  }

  take(identity: string, limit: RateLimit): Promise<number> {
    return this.#run(async () => {
      const waitMs = await this.#redis.mrbTake(
        `${this.#prefix}rate:${identity}`,
        limit.burst,
        limit.perMinute / 60_000,
      )
      return Math.ceil(waitMs / 1000)
    })
  }

  /** available is false while the connection to Redis is down (ioredis reconnects meanwhile). */
  available(): boolean {
    return this.#redis.status === 'ready'
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect())
  }

  #lease(identity: string): string {
    return `${this.#prefix}lease:${identity}`
  }
}

const leaseValue = (lease: Lease): string => `${lease.token} ${lease.key}`
