import type { RateLimitOptions } from '../common/rate-limiter.js'

/** Lease is an in-flight hold on one identity, for one request (its idempotency key). */
export interface Lease {
  readonly identity: string
  readonly key: string
  /** Unique to this acquisition, so that only the holder renews or releases it. */
  readonly token: string
}

/** LeaseRefusal says who holds the identity: the idempotency key of the request in flight. */
export interface LeaseRefusal {
  readonly heldFor: string
}

/** RateLimit is the per-identity token bucket of common/rate-limiter.ts, shared by every process. */
export type RateLimit = RateLimitOptions

/**
 * SharedState is what every bridge process must agree on to answer each request exactly once: the in-flight
 * lease per identity (it expires if its holder dies) and rate limits (answers live in the registry). Every
 * operation is atomic; a failure rejects with StateUnavailableError, which the service turns into a retryable
 * answer. memory.ts is the one-process default, redis.ts the shared one.
 */
export interface SharedState {
  /** acquire takes the identity's lease for `key` for `ttlMs`, or says which request holds it. */
  acquire(identity: string, key: string, ttlMs: number): Promise<Lease | LeaseRefusal>
  /** renew extends a lease still held by this acquisition; false when it was lost (expired and taken). */
  renew(lease: Lease, ttlMs: number): Promise<boolean>
  /** release gives a lease up, when still held by this acquisition. */
  release(lease: Lease): Promise<void>
  /** take spends one of the identity's tokens: 0 when allowed, else the seconds until one is available. */
  take(identity: string, limit: RateLimit): Promise<number>
  /** available, where the state is a server (Redis), is false while it cannot be reached. */
  available?(): boolean
  close(): Promise<void>
}

/** isLease tells an acquired lease from a refusal. */
export const isLease = (result: Lease | LeaseRefusal): result is Lease => 'token' in result
