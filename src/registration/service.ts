import type { Logger } from 'pino'
import { sleep } from '../common/abortable.js'
import type { RateLimitOptions } from '../common/rate-limiter.js'
import type { IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { type ErrorCode, RegistrationError, toRegistrationError } from '../protocol/errors.js'
import type { PresentedCredential } from '../protocol/identity.js'
import {
  decodeRequest,
  type IssuedReply,
  type PendingReply,
  peekRequestId,
  type RegistrationRequest,
  type Reply,
  rejectedReply,
} from '../protocol/messages.js'
import type { DeviceRecord, Registry } from '../registry/registry.js'
import { MemoryState } from '../state/memory.js'
import type { SharedState } from '../state/shared-state.js'
import type { AuditTrail } from './audit-trail.js'
import { idempotencyKey } from './idempotency.js'
import { InFlight } from './in-flight.js'
import { type IssuanceDeps, type IssuanceObserver, type IssuanceStep, issueAndRecord } from './issuance.js'
import type { LifecycleOptions } from './lifecycle-policy.js'
import { authorize, type PolicyOptions } from './policy.js'
import { keepRejection, RejectionLog } from './rejections.js'
import { LifecycleGate } from './renewal.js'
import { checkNotDenied, type ReplaySettings, recordedAnswer, replayable } from './replay.js'
import { ReplyCache, type ReplyCacheOptions } from './reply-cache.js'

/**
 * Answer is the service's final answer to one request, for the wiring to deliver on the identity's reply topic:
 * kept for an offline persistent session when `queue` is true (QoS 1), to a connected device only otherwise.
 */
export interface Answer {
  readonly reply: Reply
  readonly queue: boolean
}

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
  /** Renewal and re-registration; absent: every registration is allowed (and supersedes), as before. */
  readonly lifecycle?: (LifecycleOptions & { renewalRateLimit: RateLimitOptions }) | undefined
}

/** Outcome is how a request ended: issued, replayed (an earlier answer), coalesced (a duplicate in flight). */
export type Outcome = 'issued' | 'replayed' | 'coalesced' | 'rejected'

/**
 * RegistrationObserver hears how requests end, for metrics; the service never depends on what it does.
 * `mode` is known once the request decoded.
 */
export interface RegistrationObserver extends IssuanceObserver {
  answered(event: {
    outcome: Outcome
    code?: ErrorCode | undefined
    mode?: 'csr' | 'server_key' | undefined
    seconds: number
    /** How the request came: a device's own (the default) or a gateway's for a downstream device. */
    via?: 'device' | 'gateway' | undefined
  }): void
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
}

/** DownstreamContext is how a gateway's request for one downstream device differs from a device's own. */
export interface DownstreamContext {
  readonly registeredBy: string
  readonly requestId: string
  readonly log: Logger
  /**
   * vet runs the gateway policy on the order (after the device policy), with the identity held in flight; it says
   * whether the gateway takes the device over (from another gateway, or from the device itself).
   */
  readonly vet: (
    order: IssuanceOrder,
    device: DeviceRecord | undefined,
  ) => Promise<{ readonly takeOver: boolean }>
  /**
   * spend takes one of the gateway's quota tokens, throwing RATE_LIMITED when none is left: only a new issuance
   * spends one, never a replay of an earlier answer.
   */
  readonly spend: () => void
  /** replayed is told when the answer is an earlier one, not a new issuance (for metrics). */
  readonly replayed?: (() => void) | undefined
}

/** A registration reads the identity's newest certificate only: its cost does not grow with the history. */
const NEWEST = { certificates: 1 } as const

const SHUTDOWN = (): RegistrationError =>
  new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down')

/**
 * RegistrationService answers registration requests:
 * decode ▶ deny list ▶ replay? ▶ lease ▶ replay from the registry? ▶ rate limit ▶ authorize ▶ lifecycle ▶ issue ▶
 * commit (registry) ▶ answer; the wiring (Deliveries, in bridge.ts) publishes the answer.
 */
export class RegistrationService {
  readonly #deps: RegistrationServiceDeps
  readonly #options: RegistrationServiceOptions
  readonly #cache: ReplyCache
  readonly #state: SharedState
  readonly #issuance: IssuanceDeps
  readonly #replay: ReplaySettings
  readonly #lifecycle: LifecycleGate | undefined
  readonly #inFlight: InFlight
  readonly #handlers = new Set<Promise<unknown>>()
  readonly #rejections = new RejectionLog()
  #closed = false

  constructor(deps: RegistrationServiceDeps, options: RegistrationServiceOptions) {
    this.#deps = deps
    this.#options = options
    this.#cache = new ReplyCache(options.replyCache)
    this.#state = deps.state ?? new MemoryState()
    this.#issuance = deps
    this.#inFlight = new InFlight(this.#state, options.leaseMs)
    const retryWindowMs = options.replyCache.ttlSeconds * 1000
    this.#replay = {
      retryWindowMs,
      get extraTrustPem() {
        return options.extraTrustPem
      },
      productionUrl: options.productionUrl,
      denied: options.lifecycle?.denied,
    }
    this.#lifecycle = options.lifecycle && new LifecycleGate(deps.registry, options.lifecycle, retryWindowMs)
  }

  /**
   * handle answers one request payload from `identity`; undefined for a duplicate of the registration in
   * flight, which that one answers. It never rejects: every failure becomes a `rejected` answer.
   */
  handle(identity: string, payload: Buffer, credential?: PresentedCredential): Promise<Answer | undefined> {
    const handler = this.#handle(identity, payload, credential).finally(() => this.#handlers.delete(handler))
    this.#handlers.add(handler)
    return handler
  }

  async #handle(
    identity: string,
    payload: Buffer,
    credential: PresentedCredential | undefined,
  ): Promise<Answer | undefined> {
    const log = this.#deps.logger.child({ identity })
    const started = performance.now()
    let mode: 'csr' | 'server_key' | undefined
    const observe = (outcome: Outcome, code?: ErrorCode): void =>
      this.#deps.observer?.answered({ outcome, code, mode, seconds: (performance.now() - started) / 1000 })
    let requestId: string | undefined
    try {
      if (this.#closed) throw SHUTDOWN()
      this.checkDenied(identity, credential)
      const request = await this.#decode(identity, payload)
      requestId = request.requestId
      mode = request.csr === undefined ? 'server_key' : 'csr'
      const answer = await this.#answer(identity, request, log, credential)
      observe(answer?.outcome ?? 'coalesced')
      return answer && { reply: answer.reply, queue: true }
    } catch (err) {
      const error = toRegistrationError(err)
      observe('rejected', error.code)
      requestId ??= peekRequestId(payload)
      this.#rejections.log(identity, error, requestId, log, Math.round(performance.now() - started))
      return { reply: rejectedReply(error, requestId), queue: keepRejection(error) }
    }
  }

  /** #decode validates the payload; an invalid request spends a rate-limit token like a valid one. */
  async #decode(identity: string, payload: Buffer): Promise<RegistrationRequest> {
    try {
      return decodeRequest(payload, this.#options.requestMaxBytes)
    } catch (err) {
      const retryAfterSeconds = await this.#state.take(identity, this.#options.rateLimit)
      if (retryAfterSeconds > 0) {
        throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
      }
      throw err
    }
  }

  async #answer(
    identity: string,
    request: RegistrationRequest,
    log: Logger,
    credential: PresentedCredential | undefined,
  ): Promise<{ reply: Reply; outcome: 'issued' | 'replayed' } | undefined> {
    const renewing = await this.#lifecycle?.renewal(identity, credential)
    const scope = renewing ? { renewing: renewing.serialNumber } : {}
    const key = idempotencyKey(identity, request, this.#options.policy.defaultKeyAlgorithm, scope)
    // an earlier answer is replayed only while its certificate is current: a revoked or superseded one is not
    // handed out again (with its key); the request is then judged afresh
    const local = this.#cache.get(key)
    if (local && (await this.#current(identity, local))) return { reply: local, outcome: 'replayed' }
    const controller = new AbortController()
    // the lease first: while another process holds it for this request, that one answers (a replay now
    // would be a second answer); once it is ours, the registry's record of this request is its answer
    const lease = await this.#inFlight.hold(identity, key, controller)
    if (!lease) return undefined
    try {
      const requestId = request.requestId
      const device = await this.#deps.registry.device(identity, NEWEST)
      // the record says it is active; only the deny list is left to ask
      const recorded = recordedAnswer(device, key, requestId, this.#replay)
      if (recorded && checkNotDenied(identity, recorded, this.#replay))
        return { reply: recorded, outcome: 'replayed' }
      const retryAfterSeconds = await this.#state.take(identity, this.#options.rateLimit)
      if (retryAfterSeconds > 0) {
        throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
      }
      const order = authorize(identity, request, this.#options.policy)
      const step = await this.#lifecycle?.decide(order, { key, device, renewing })
      const reply = await this.#issue(order, { key, requestId, ...step }, controller, log)
      this.#cache.set(key, reply)
      return { reply, outcome: 'issued' }
    } finally {
      await lease.release()
    }
  }

  #issue(
    order: IssuanceOrder,
    step: IssuanceStep,
    controller: AbortController,
    log: Logger,
  ): Promise<IssuedReply> {
    return issueAndRecord(this.#issuance, this.#options, order, step, controller, log)
  }

  /**
   * checkDenied refuses (NOT_AUTHORIZED) an identity, or the certificate it connected with, that the deny list
   * in force names: the list is checked at every request, not only at CONNECT.
   */
  checkDenied(identity: string, credential?: PresentedCredential): void {
    const reason = this.#options.lifecycle?.denied?.({
      identity,
      serialNumber: credential?.serialNumber ?? '',
      sha256Fingerprint: credential?.sha256Fingerprint ?? '',
    })
    if (reason !== undefined) throw new RegistrationError('NOT_AUTHORIZED', reason)
  }

  /** cachedReplies is the number of replies held in the reply cache. */
  get cachedReplies(): number {
    return this.#cache.size
  }

  /**
   * issueFor runs the per-device path (policy ▶ vet ▶ issue ▶ record) for a downstream identity a gateway asks
   * for. The identity is held in flight as for its own request, so no two registrations race.
   */
  issueFor(identity: string, request: RegistrationRequest, context: DownstreamContext): Promise<IssuedReply> {
    // tracked like a device's own request, so that close gives it the same grace period
    const handler = this.#issueFor(identity, request, context).finally(() => this.#handlers.delete(handler))
    this.#handlers.add(handler)
    return handler
  }

  async #issueFor(
    identity: string,
    request: RegistrationRequest,
    context: DownstreamContext,
  ): Promise<IssuedReply> {
    if (this.#closed) throw SHUTDOWN()
    if (this.#inFlight.has(identity)) {
      throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
    }
    const { registeredBy, requestId } = context
    // a downstream device's request is its entry in the batch, under the batch's requestId, through this gateway
    const entry = { ...request, requestId }
    const key = idempotencyKey(identity, entry, this.#options.policy.defaultKeyAlgorithm, { registeredBy })
    const controller = new AbortController()
    const lease = await this.#inFlight.hold(identity, key, controller)
    if (!lease) throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
    try {
      const order = authorize(identity, request, this.#options.policy, registeredBy)
      // read once: the gateway policy's ownership rules and the lifecycle decide on the same record
      const device = await this.#deps.registry.device(identity, NEWEST)
      const { takeOver } = await context.vet(order, device)
      // a retry (after a crash too: the registry's record) gets its earlier answer, if that certificate is still
      // current: the same reply cache and request hash as a device's own request
      const cached = this.#cache.get(key)
      const earlier =
        cached && (await this.#current(identity, cached))
          ? cached
          : recordedAnswer(device, key, requestId, this.#replay)
      if (earlier && checkNotDenied(identity, earlier, this.#replay)) {
        context.replayed?.()
        return earlier
      }
      context.spend()
      const step = await this.#lifecycle?.decide(order, { key, device, registeredBy, takeOver })
      const downstream = { ...order, registeredBy }
      const reply = await this.#issue(downstream, { key, requestId, ...step }, controller, context.log)
      this.#cache.set(key, reply)
      return reply
    } finally {
      await lease.release()
    }
  }

  /** #current: an earlier answer may be handed out again (replay.ts: active, and not on the deny list). */
  #current(identity: string, reply: IssuedReply): Promise<boolean> {
    return replayable(this.#deps.registry, identity, reply, this.#replay)
  }

  /**
   * close refuses new requests, lets registrations in flight finish for up to `graceMs`, then aborts what is
   * left (it answers ISSUER_UNAVAILABLE, even mid key generation) and waits for every answer to be sent.
   */
  async close(graceMs = 0): Promise<void> {
    this.#closed = true
    if (graceMs > 0 && this.#handlers.size > 0) {
      const grace = new AbortController()
      await Promise.race([
        Promise.allSettled([...this.#handlers]),
        sleep(graceMs, grace.signal).catch(() => {}),
      ])
      grace.abort()
    }
    this.#inFlight.abortAll(SHUTDOWN())
    await Promise.allSettled([...this.#handlers])
    this.#cache.clear()
  }
}
