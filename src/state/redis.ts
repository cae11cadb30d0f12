import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { StateUnavailableError } from '../protocol/errors.js'
import type { Lease, LeaseRefusal, RateLimit, SharedState } from './shared-state.js'

/** RedisStateOptions: where Redis is, the prefix of every key, and how long one command may take. */
export interface RedisStateOptions {
  readonly url: string
  readonly keyPrefix: string
  readonly commandTimeoutMs: number
}

/**
 * SCRIPTS run atomically in Redis, one key each. A lease's value is `<token> <key>`; a rate-limit bucket is a hash
 * of `tokens` (fractional) and `at` (Redis' own clock, ms), the rule of src/common/token-bucket.ts.
 */
const SCRIPTS = {
  /** lease; token, key, ttlMs → nil when acquired, else the value held */
  mrbAcquire: `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return false`,
  /** lease; value, ttlMs → 1 when still held by this value */
  mrbRenew: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  /** lease; value → deletes it only when held by this value */
  mrbRelease: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  /** bucket; burst, tokens per ms → 0 when a token was spent, else ms until one is there */
  mrbTake: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait`,
}

interface Scripts {
  mrbAcquire(lease: string, token: string, key: string, ttlMs: number): Promise<string | null>
  mrbRenew(lease: string, value: string, ttlMs: number): Promise<number>
  mrbRelease(lease: string, value: string): Promise<number>
  mrbTake(bucket: string, burst: number, perMs: number): Promise<number>
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
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: 1, lua })
    this.#redis = redis as Redis & Scripts
    this.#prefix = prefix
  }

  /** connect reaches Redis once (a bridge that cannot reach it at start does not start), then reconnects as needed. */
  static async connect(options: RedisStateOptions): Promise<RedisState> {
    // commands fail at once while disconnected (never queued)
    const redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: options.commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    })
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
