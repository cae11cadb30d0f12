import type { Logger } from 'pino'
import type { RateLimitOptions } from '../common/rate-limiter.js'
import type { Issuer } from '../issuers/issuer.js'
import type { PendingReply } from '../protocol/messages.js'
import type { Registry } from '../registry/registry.js'
import type { SharedState } from '../state/shared-state.js'
import type { AuditTrail } from './audit-trail.js'
import type { LifecycleOptions } from './lifecycle-policy.js'
import type { RegistrationObserver } from './observer.js'
import type { Steps } from './pipeline/run.js'
import type { PolicyOptions } from './policy.js'
import type { ReplyCacheOptions } from './reply-cache.js'

/** RegistrationServiceOptions are the validated settings the service needs. */
export interface RegistrationServiceOptions {
  readonly policy: PolicyOptions
  readonly requestMaxBytes: number
  readonly pendingAfterMs: number
  readonly issuanceTimeoutMs: number
  readonly rateLimit: RateLimitOptions
  readonly replyCache: ReplyCacheOptions
  readonly extraTrustPem: string
  readonly productionUrl: string | undefined
  /** How long an in-flight lease lives unless renewed (it is renewed while its holder lives); default 10 s. */
  readonly leaseMs?: number | undefined
  /**
   * Whether an answer with a generated private key may be kept for an offline session: not where sessions live in
   * shared state (Redis), which must never hold a key; default true.
   */
  readonly queueGeneratedKeys?: boolean | undefined
  /** Renewal and re-registration; absent: every registration is allowed (and supersedes), as before. */
  readonly lifecycle?: (LifecycleOptions & { renewalRateLimit: RateLimitOptions }) | undefined
}

/** RegistrationServiceDeps are the collaborators the service calls, never back. */
export interface RegistrationServiceDeps {
  readonly issuer: Issuer
  /** The one durable record of every issuance: a retry is recognised from it, across restarts and processes. */
  readonly registry: Registry
  /** The audit log, written from committed records. */
  readonly audit: AuditTrail
  /** Sends a progress notice (`pending`) to a connected device; it is never kept for a later session. */
  readonly notify: (identity: string, notice: PendingReply) => void
  readonly logger: Logger
  readonly observer?: RegistrationObserver | undefined
  /** In-flight leases and rate limits; one process's memory unless replicas share Redis. */
  readonly state?: SharedState | undefined
  /** The pipeline's steps (STEPS; a test runs others, e.g. with a crash between two of them). */
  readonly steps?: Steps | undefined
}
