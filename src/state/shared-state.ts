import type { IssuedReply } from '../protocol/messages.js'

/**
 * SharedAnswer is what may be shared between processes about an answered request: the serial number of the
 * certificate issued for it and, in CSR mode only, the reply (public: a certificate and its chain). A reply
 * holding a private key made by the bridge is never shared: it stays in the memory of the process that made it.
 */
export interface SharedAnswer {
  readonly serialNumber: string
  readonly reply?: IssuedReply | undefined
}

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

/** RateLimit: `burst` requests at once per identity, refilled at `perMinute` (the token-bucket rule). */
export interface RateLimit {
  readonly burst: number
  readonly perMinute: number
}

/**
 * SharedState is what every bridge process must agree on to answer each request exactly once: the in-flight
 * lease per identity (it expires if its holder dies), the answers that may be shared, and rate limits. Every
 * operation is atomic; a failure rejects with StateUnavailableError, which the service turns into a retryable
 * answer. memory.ts is the one-process default, redis.ts the shared one.
 */
export interface SharedState {
  /** shared is true when other processes see this state (Redis), false for one process's memory. */
  readonly shared: boolean
  /** acquire takes the identity's lease for `key` for `ttlMs`, or says which request holds it. */
  acquire(identity: string, key: string, ttlMs: number): Promise<Lease | LeaseRefusal>
  /** renew extends a lease still held by this acquisition; false when it was lost (expired and taken). */
  renew(lease: Lease, ttlMs: number): Promise<boolean>
  /** release gives a lease up, when still held by this acquisition. */
  release(lease: Lease): Promise<void>
  /** answer returns what was shared about the request with this idempotency key, within its lifetime. */
  answer(key: string): Promise<SharedAnswer | undefined>
  /** share records an answer for `ttlMs` unless one is there (the first stays); never a private key. */
  share(key: string, answer: SharedAnswer, ttlMs: number): Promise<void>
  /** take spends one of the identity's tokens: 0 when allowed, else the seconds until one is available. */
  take(identity: string, limit: RateLimit): Promise<number>
  /** available, where the state is a server (Redis), is false while it cannot be reached. */
  available?(): boolean
  close(): Promise<void>
}

/** isLease tells an acquired lease from a refusal. */
export const isLease = (result: Lease | LeaseRefusal): result is Lease => 'token' in result

/** shareable is what of an answer may leave the process: never a reply with a private key in it. */
export function shareable(reply: IssuedReply): SharedAnswer {
  const { serialNumber } = reply
  return reply.privateKey === undefined ? { serialNumber, reply } : { serialNumber }
}
