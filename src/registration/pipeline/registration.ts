import type { Logger } from 'pino'
import type { RateLimitOptions } from '../../common/rate-limiter.js'
import type { Credentials, IssuanceOrder, Issuer } from '../../issuers/issuer.js'
import type { PresentedCredential, RequestConnection } from '../../protocol/identity.js'
import type { IssuedReply, PendingReply, RegistrationRequest } from '../../protocol/messages.js'
import type { DeviceRecord, Registry } from '../../registry/registry.js'
import type { SharedState } from '../../state/shared-state.js'
import type { AuditTrail } from '../audit-trail.js'
import type { InFlight, InFlightLease } from '../in-flight.js'
import type { RenewedCertificate } from '../lifecycle-policy.js'
import type { IssuanceObserver } from '../observer.js'
import type { PolicyOptions } from '../policy.js'
import type { LifecycleGate, LifecycleStep } from '../renewal.js'
import type { ReplaySettings } from '../replay.js'
import type { ReplyCache } from '../reply-cache.js'

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
  /** Whether a connection that can hear the answer is still up (a request from a stalled process is dropped). */
  readonly connection: RequestConnection
  readonly log: Logger
  /** Aborts the issuance: timeout, shutdown, or a lost lease. */
  readonly controller: AbortController
  /** renewal: the operational certificate this request renews (a connection with one). */
  renewing?: RenewedCertificate | undefined
  /** requestHash: the request hash (idempotency.ts), the key of its answer everywhere. */
  key?: string
  /** lease: the identity held in flight, by this process, for this request. */
  lease?: InFlightLease
  /** record: the identity's registry record with its newest certificate (read once, used by every decision). */
  device?: DeviceRecord | undefined
  /** authorize: what to issue. */
  order?: IssuanceOrder
  /** vet: the gateway policy lets this gateway take the device over. */
  takeOver?: boolean
  /** lifecycle: the event and what the new certificate supersedes. */
  lifecycle?: LifecycleStep
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
  /** quiet turns a silent end into what this path answers instead (a gateway's device always gets a result). */
  quiet?(reason: string): Done
}

/** PipelineSettings are the validated settings the steps read (getters may change them at run time). */
export interface PipelineSettings {
  readonly policy: PolicyOptions
  readonly pendingAfterMs: number
  readonly issuanceTimeoutMs: number
  readonly rateLimit: RateLimitOptions
  readonly lifecycle?: { readonly renewalRateLimit: RateLimitOptions } | undefined
}

/** Pipeline is what the steps work with: the collaborators and the service's own state. */
export interface Pipeline {
  readonly settings: PipelineSettings
  readonly issuer: Issuer
  readonly registry: Registry
  readonly audit: AuditTrail
  readonly state: SharedState
  readonly inFlight: InFlight
  readonly cache: ReplyCache
  readonly replay: ReplaySettings
  readonly lifecycle: LifecycleGate | undefined
  /** Sends a progress notice (`pending`) to a connected device; never kept for a later session. */
  readonly notify: (identity: string, notice: PendingReply) => void
  readonly observer?: IssuanceObserver | undefined
  /** Whether the bridge is closing: a new request is refused. */
  readonly closed: () => boolean
}

/** Step is one named step: it adds what it found to the registration, or ends it. */
export type Step = (p: Pipeline, r: Registration, path: Path) => Promise<Done | undefined> | Done | undefined
