import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { sleep, untilAborted } from '../common/abortable.js'
import type { IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { RegistrationError, toRegistrationError } from '../protocol/errors.js'
import {
  decodeRequest,
  type IssuedReply,
  type PendingReply,
  peekRequestId,
  type RegistrationRequest,
  type Reply,
  rejectedReply,
} from '../protocol/messages.js'
import { auditRecordFor } from './audit-log.js'
import type { IssuedIndex } from './issued-index.js'
import { authorize, type PolicyOptions } from './policy.js'
import { RateLimiter, type RateLimitOptions } from './rate-limiter.js'
import { keepRejection, RejectionLog } from './rejections.js'
import { issuedReply } from './replies.js'
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
}

/** RegistrationServiceDeps are the collaborators the service calls, never back. */
export interface RegistrationServiceDeps {
  readonly issuer: Issuer
  /** Where issuances are recorded: the issued index (answers that survive a restart) and the audit log. */
  readonly issued: IssuedIndex
  /** Sends a progress notice (`pending`) to a connected device; it is never kept for a later session. */
  readonly notify: (identity: string, notice: PendingReply) => void
  readonly logger: Logger
}

interface InFlight {
  readonly key: string
  readonly controller: AbortController
}

const SHUTDOWN = (): RegistrationError =>
  new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down')

/**
 * RegistrationService answers registration requests:
 * decode ▶ deduplicate ▶ rate limit ▶ authorize ▶ issue ▶ record (index, audit) ▶ answer;
 * the wiring (Deliveries, in bridge.ts) publishes the answer.
 */
export class RegistrationService {
  readonly #deps: RegistrationServiceDeps
  readonly #options: RegistrationServiceOptions
  readonly #cache: ReplyCache
  readonly #limiter: RateLimiter
  readonly #inFlight = new Map<string, InFlight>()
  readonly #handlers = new Set<Promise<unknown>>()
  readonly #rejections = new RejectionLog()
  #closed = false

  constructor(deps: RegistrationServiceDeps, options: RegistrationServiceOptions) {
    this.#deps = deps
    this.#options = options
    this.#cache = new ReplyCache(options.replyCache)
    this.#limiter = new RateLimiter(options.rateLimit)
  }

  /**
   * handle answers one request payload from `identity`; undefined for a duplicate of the registration in
   * flight, which that one answers. It never rejects: every failure becomes a `rejected` answer.
   */
  handle(identity: string, payload: Buffer): Promise<Answer | undefined> {
    const handler = this.#handle(identity, payload).finally(() => this.#handlers.delete(handler))
    this.#handlers.add(handler)
    return handler
  }

  async #handle(identity: string, payload: Buffer): Promise<Answer | undefined> {
    const log = this.#deps.logger.child({ identity })
    let requestId: string | undefined
    let reply: Reply
    let queue = true
    try {
      if (this.#closed) throw SHUTDOWN()
      const request = this.#decode(identity, payload)
      requestId = request.requestId
      const answer = await this.#answer(identity, request, log)
      if (answer === undefined) return undefined
      reply = answer
    } catch (err) {
      const error = toRegistrationError(err)
      requestId ??= peekRequestId(payload)
      this.#rejections.log(identity, error, requestId, log)
      reply = rejectedReply(error, requestId)
      queue = keepRejection(error)
    }
    return { reply, queue }
  }

  /** #decode validates the payload; an invalid request spends a rate-limit token like a valid one. */
  #decode(identity: string, payload: Buffer): RegistrationRequest {
    try {
      return decodeRequest(payload, this.#options.requestMaxBytes)
    } catch (err) {
      const retryAfterSeconds = this.#limiter.take(identity)
      if (retryAfterSeconds > 0) {
        throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
      }
      throw err
    }
  }

  async #answer(identity: string, request: RegistrationRequest, log: Logger): Promise<Reply | undefined> {
    const key = idempotencyKey(identity, request)
    const cached = this.#cache.get(key) ?? this.#deps.issued.lookup(key)?.reply
    if (cached) return cached
    const current = this.#inFlight.get(identity)
    if (current?.key === key) return undefined
    if (current) throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
    const retryAfterSeconds = this.#limiter.take(identity)
    if (retryAfterSeconds > 0) {
      throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
    }
    const order = authorize(identity, request, this.#options.policy)
    const controller = new AbortController()
    this.#inFlight.set(identity, { key, controller })
    try {
      const reply = await this.#issue(order, { key, requestId: request.requestId }, controller, log)
      this.#cache.set(key, reply)
      return reply
    } finally {
      this.#inFlight.delete(identity)
    }
  }

  async #issue(
    order: IssuanceOrder,
    { key, requestId }: { key: string; requestId: string | undefined },
    controller: AbortController,
    log: Logger,
  ): Promise<IssuedReply> {
    const { issuer, issued, notify } = this.#deps
    // server-key mode after a restart: the first key is gone, so a new certificate replaces the one issued
    const supersedes = issued.lookup(key)?.record.serialNumber
    const started = performance.now()
    const pending = setTimeout(() => {
      notify(order.identity, { status: 'pending', ...(requestId === undefined ? {} : { requestId }) })
    }, this.#options.pendingAfterMs)
    const timeout = setTimeout(
      () => controller.abort(new RegistrationError('ISSUANCE_TIMEOUT', 'issuance timed out; retry later')),
      this.#options.issuanceTimeoutMs,
    )
    try {
      const credentials = await untilAborted(issuer.issue(order, controller.signal), controller.signal)
      const record = auditRecordFor(credentials, {
        identity: order.identity,
        issuer: issuer.name,
        keySource: order.csr ? 'device' : 'bridge',
        ...(requestId === undefined ? {} : { requestId }),
        requestHash: key,
        ...(supersedes === undefined ? {} : { supersedes }),
      })
      const reply = issuedReply(credentials, {
        requestId,
        extraTrustPem: this.#options.extraTrustPem,
        productionUrl: this.#options.productionUrl,
      })
      // certificates are public: CSR-mode answers are kept in the index; a generated key never is
      await issued.record({ key, record, ...(order.csr ? { reply } : {}) })
      log.info(
        { requestId, serialNumber: credentials.serialNumber, ms: Math.round(performance.now() - started) },
        'certificate issued',
      )
      return reply
    } finally {
      clearTimeout(pending)
      clearTimeout(timeout)
    }
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
    for (const { controller } of this.#inFlight.values()) controller.abort(SHUTDOWN())
    await Promise.allSettled([...this.#handlers])
    this.#cache.clear()
  }
}

/** idempotencyKey identifies a request: the same identity sending the same request is the same registration. */
function idempotencyKey(identity: string, request: RegistrationRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([identity, request]))
    .digest('hex')
}
