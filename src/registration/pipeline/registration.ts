import type { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import type { RateLimitOptions } from '../../common/rate-limiter.js'
import type { Credentials, IssuanceOrder, Issuer } from '../../issuers/issuer.js'
import type { WireFormat } from '../../protocol/codec/codecs.js'
import type { PresentedCredential } from '../../protocol/identity.js'
import type { IssuedReply, PendingReply, RegistrationRequest } from '../../protocol/messages.js'
import type { DeviceRecord, IssuanceEvent, Registry } from '../../registry/registry.js'
import type { LeaseKeeper } from '../../state/lease-keeper.js'
import type { SharedState } from '../../state/shared-state.js'
import type { AuditTrail } from '../audit-trail.js'
import type { RegistrationHook } from '../hook/client.js'
import type { InFlight } from '../in-flight.js'
import type { LifecycleOptions, RenewedCertificate } from '../lifecycle-policy.js'
import type { RegistrationObserver } from '../observer.js'
import type { PolicyOptions } from '../policy.js'

/** RegistrationServiceOptions are the validated settings the service needs (getters may change at run time). */
export interface RegistrationServiceOptions {
  readonly policy: PolicyOptions
  readonly requestMaxBytes: number
  readonly pendingAfterMs: number
  readonly issuanceTimeoutMs: number
  readonly rateLimit: RateLimitOptions
  /** How long and how many issued replies are kept in memory (never on disk); 0: none. */
  readonly replyCache: { readonly ttlSeconds: number; readonly maxEntries: number }
  /** PEM appended to the issuer's CA certificates in every reply, e.g. the production broker's server CA. */
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
  /**
   * Sends a progress notice (`pending`) to a connected device, in the wire format of its request; it is never kept
   * for a later session.
   */
  readonly notify: (identity: string, notice: PendingReply, format: WireFormat) => void
  readonly logger: Logger
  readonly observer?: RegistrationObserver | undefined
  /** In-flight leases and rate limits; one process's memory unless replicas share Redis. */
  readonly state?: SharedState | undefined
  /** The operator's registration hook (docs/hook.md), asked once per new issuance; absent: none. */
  readonly hook?: RegistrationHook | undefined
  /** The pipeline's steps (STEPS; a test runs others, e.g. with a crash between two of them). */
  readonly steps?: Steps | undefined
}

/**
 * Registration is one request for one identity on its way through the pipeline: what came in, then what each
 * step found or decided, in the order of STEPS (pipeline/steps.ts).
 */
export interface Registration {
  readonly identity: string
  /** The request; for a device of a gateway batch, its entry under the batch's requestId. */
  readonly request: RegistrationRequest
  /** The certificate the identity connected with (a device's own request); absent for a gateway's device. */
  readonly credential?: PresentedCredential | undefined
  readonly log: Logger
  /** Aborts the issuance: timeout, shutdown, or a lost lease. */
  readonly controller: AbortController
  /** Tells the asker its request is under way (`pending`), as its request came (a device's own request only). */
  readonly notify?: ((notice: PendingReply) => void) | undefined
  /** renewal: the operational certificate this request renews (a connection with one). */
  renewing?: RenewedCertificate | undefined
  /** requestHash: the request hash (idempotency.ts), the key of its answer everywhere. */
  key?: string
  /** lease: the identity held in flight, by this process, for this request. */
  lease?: LeaseKeeper
  /** record: the identity's registry record with its newest certificate (read once, used by every decision). */
  device?: DeviceRecord | undefined
  /** authorize: what to issue. */
  order?: IssuanceOrder
  /** vet: the gateway policy lets this gateway take the device over. */
  takeOver?: boolean
  /** lifecycle: the event and what the new certificate supersedes. */
  lifecycle?: { readonly event: IssuanceEvent; readonly supersedes?: string | undefined }
  /** hook or issue: the device was told `pending` (once per request). */
  pendingSent?: boolean
  /** hook: the production endpoint the registration hook assigned to this issuance (else productionUrl). */
  endpoint?: string | undefined
  /** issue: what the issuer returned (a generated key too: it lives in memory only, until the reply). */
  credentials?: Credentials
}

/** Done ends a registration: an answer (issued now, or an earlier one replayed), or silence (another answers). */
export type Done =
  | { readonly reply: IssuedReply; readonly outcome: 'issued' | 'replayed' }
  | { readonly silent: string }

/**
 * Path is what differs between a device's own request (a registration or a renewal) and a gateway's request for
 * one downstream device: who is authorized, under what quota, and what the answer becomes. The steps are the same.
 */
export interface Path {
  /** The gateway asking for the device; absent for a device's own request. */
  readonly registeredBy?: string | undefined
  /** vet runs the gateway policy on the order (after the device policy): may the gateway hold this device? */
  vet?(order: IssuanceOrder, device: DeviceRecord | undefined): Promise<{ readonly takeOver: boolean }>
  /** spend takes one token of this path's rate limit (a new issuance only, never a replay); throws RATE_LIMITED. */
  spend(identity: string): Promise<void>
  /**
   * The state the certificate is recorded in: `active` (the default), or `pending` (an AWS create call: active once
   * RegisterThing comes). A replay or retry of the request is of a certificate still in this state.
   */
  readonly issuedState?: 'pending' | undefined
  /** quiet turns a silent end into what this path answers instead (a gateway's device always gets a result). */
  quiet?(reason: string): Done
}

/** Pipeline is what the steps work with: the service's collaborators, its settings and its own state. */
export interface Pipeline extends Omit<RegistrationServiceDeps, 'state' | 'steps'> {
  readonly settings: RegistrationServiceOptions
  readonly state: SharedState
  readonly inFlight: InFlight
  /**
   * Issued replies, so that a repeated request gets the same answer without a second issuance. They may hold a
   * generated private key: in this process's memory only, expiring and bounded (absent when either bound is 0).
   */
  readonly cache: LRUCache<string, IssuedReply> | undefined
  /** How long after an issuance a retry of its request is still that request's retry (replyCacheSeconds). */
  readonly retryWindowMs: number
  /** Whether the bridge is closing: a new request is refused. */
  readonly closed: () => boolean
}

/** Step is one named step: it adds what it found to the registration, or ends it (returns Done). */
export type Step = (p: Pipeline, r: Registration, path: Path) => Promise<Done | undefined> | Done | undefined

/** Steps are named steps in the order they run (STEPS in steps.ts; a test may run another list). */
export type Steps = Readonly<Record<string, Step>>
