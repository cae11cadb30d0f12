import type { Logger } from 'pino'
import { sleep } from '../common/abortable.js'
import type { RateLimitOptions } from '../common/rate-limiter.js'
import type { IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { type ErrorCode, RegistrationError, toRegistrationError } from '../protocol/errors.js'
import type { PresentedCredential, RequestConnection } from '../protocol/identity.js'
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
import { InFlight } from './in-flight.js'
import type { LifecycleOptions } from './lifecycle-policy.js'
import type { IssuanceObserver, Path, Pipeline, Registration } from './pipeline/registration.js'
import { run } from './pipeline/run.js'
import { refuseDenied } from './pipeline/steps.js'
import type { PolicyOptions } from './policy.js'
import { keepRejection, RejectionLog } from './rejections.js'
import { LifecycleGate } from './renewal.js'
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
  /**
   * Whether an answer with a generated private key may be kept for an offline session: not where sessions live in
   * shared state (Redis), which must never hold a key; default true.
   */
  readonly queueGeneratedKeys?: boolean | undefined
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
  /** The gateway policy (Path.vet), with the identity held in flight: whether the gateway takes the device over. */
  readonly vet: (
    order: IssuanceOrder,
    device: DeviceRecord | undefined,
  ) => Promise<{ readonly takeOver: boolean }>
  /** spend takes one of the gateway's quota tokens (a new issuance only), throwing RATE_LIMITED when none is left. */
  readonly spend: () => void
  /** replayed is told when the answer is an earlier one, not a new issuance (for metrics). */
  readonly replayed?: (() => void) | undefined
}

/** ALWAYS_OPEN is the connection of a request handed over without one (tests, tools). */
const ALWAYS_OPEN: RequestConnection = { open: true }

/**
 * RegistrationService answers registration requests: a device's payload is decoded, then every request (a
 * device's registration or renewal, each device of a gateway batch) runs the one pipeline (pipeline/steps.ts);
 * the wiring (Deliveries) publishes the answer.
 */
export class RegistrationService {
  readonly #logger: Logger
  readonly #observer: RegistrationObserver | undefined
  readonly #options: RegistrationServiceOptions
  readonly #pipeline: Pipeline
  readonly #inFlight: InFlight
  readonly #cache: ReplyCache
  readonly #device: Path
  readonly #handlers = new Set<Promise<unknown>>()
  readonly #rejections = new RejectionLog()
  #closed = false

  constructor(deps: RegistrationServiceDeps, options: RegistrationServiceOptions) {
    this.#logger = deps.logger
    this.#observer = deps.observer
    this.#options = options
    const state = deps.state ?? new MemoryState()
    this.#cache = new ReplyCache(options.replyCache)
    this.#inFlight = new InFlight(state, options.leaseMs)
    const retryWindowMs = options.replyCache.ttlSeconds * 1000
    this.#pipeline = {
      settings: options,
      issuer: deps.issuer,
      registry: deps.registry,
      audit: deps.audit,
      state,
      inFlight: this.#inFlight,
      cache: this.#cache,
      replay: {
        retryWindowMs,
        get extraTrustPem() {
          return options.extraTrustPem
        },
        productionUrl: options.productionUrl,
        denied: options.lifecycle?.denied,
      },
      lifecycle: options.lifecycle && new LifecycleGate(options.lifecycle, retryWindowMs),
      notify: deps.notify,
      observer: deps.observer,
      closed: () => this.#closed,
    }
    this.#device = {
      spend: async (identity) => {
        const retryAfterSeconds = await state.take(identity, options.rateLimit)
        if (retryAfterSeconds > 0)
          throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
      },
    }
  }

  /**
   * handle answers one request payload from `identity`; undefined when another process or request answers (the
   * same request in flight). It never rejects: every failure becomes a `rejected` answer.
   */
  handle(
    identity: string,
    payload: Buffer,
    credential?: PresentedCredential,
    connection: RequestConnection = ALWAYS_OPEN,
  ): Promise<Answer | undefined> {
    return this.#track(this.#handle(identity, payload, credential, connection))
  }

  async #handle(
    identity: string,
    payload: Buffer,
    credential: PresentedCredential | undefined,
    connection: RequestConnection,
  ): Promise<Answer | undefined> {
    const log = this.#logger.child({ identity })
    const started = performance.now()
    let mode: 'csr' | 'server_key' | undefined
    const observe = (outcome: Outcome, code?: ErrorCode): void =>
      this.#observer?.answered({ outcome, code, mode, seconds: (performance.now() - started) / 1000 })
    let requestId: string | undefined
    try {
      const request = await this.#decode(identity, payload)
      requestId = request.requestId
      mode = request.csr === undefined ? 'server_key' : 'csr'
      const registration = this.#registration(identity, request, log, connection, credential)
      const done = await run(this.#pipeline, registration, this.#device)
      if ('silent' in done) {
        observe('coalesced')
        return undefined
      }
      observe(done.outcome)
      const queue = this.#options.queueGeneratedKeys !== false || done.reply.privateKey === undefined
      return { reply: done.reply, queue }
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
      await this.#device.spend(identity)
      throw err
    }
  }

  /**
   * issueFor runs the pipeline for a downstream identity a gateway asks for, on the gateway's path: its entry in the
   * batch under the batch's requestId, the gateway policy as the vet step, the gateway's quota rate.
   */
  issueFor(identity: string, request: RegistrationRequest, context: DownstreamContext): Promise<IssuedReply> {
    return this.#track(this.#issueFor(identity, request, context))
  }

  async #issueFor(
    identity: string,
    request: RegistrationRequest,
    context: DownstreamContext,
  ): Promise<IssuedReply> {
    const entry = { ...request, requestId: context.requestId }
    const path: Path = {
      registeredBy: context.registeredBy,
      vet: context.vet,
      spend: async () => context.spend(),
      quiet: () => {
        throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
      },
    }
    const done = await run(this.#pipeline, this.#registration(identity, entry, context.log), path)
    if ('silent' in done) throw new Error('unreachable: a gateway path is never silent')
    if (done.outcome === 'replayed') context.replayed?.()
    return done.reply
  }

  #registration(
    identity: string,
    request: RegistrationRequest,
    log: Logger,
    connection: RequestConnection = ALWAYS_OPEN,
    credential?: PresentedCredential,
  ): Registration {
    return { identity, request, credential, connection, log, controller: new AbortController() }
  }

  #track<T>(handler: Promise<T>): Promise<T> {
    const tracked = handler.finally(() => this.#handlers.delete(tracked))
    this.#handlers.add(tracked)
    return tracked
  }

  /** checkDenied refuses (NOT_AUTHORIZED, DENY_LISTED) an identity or certificate the deny list in force names. */
  checkDenied(identity: string, credential?: PresentedCredential): void {
    refuseDenied(this.#pipeline.replay.denied, identity, credential)
  }

  /** cachedReplies is the number of replies held in the reply cache. */
  get cachedReplies(): number {
    return this.#cache.size
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
    this.#inFlight.abortAll(new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down'))
    await Promise.allSettled([...this.#handlers])
    this.#cache.clear()
  }
}
