import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { untilAborted } from '../common/abortable.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { type ErrorCode, RegistrationError, toRegistrationError } from '../protocol/errors.js'
import {
  decodeRequest,
  type IssuedReply,
  peekRequestId,
  type RegistrationRequest,
  type Reply,
  rejectedReply,
} from '../protocol/messages.js'
import type { NewIssuance, Registry } from '../registry/registry.js'
import { type AuditLog, type AuditRecord, auditRecordFor } from './audit-log.js'
import { authorize, type PolicyOptions } from './policy.js'
import { RateLimiter, type RateLimitOptions } from './rate-limiter.js'
import { issuedReply } from './replies.js'
import { ReplyCache, type ReplyCacheOptions } from './reply-cache.js'

/** ReplyPublisher delivers a reply on the identity's reply topic (QoS 1, never retained). */
export interface ReplyPublisher {
  publish(identity: string, reply: Reply): Promise<void>
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

/**
 * RegistrationObserver hears how requests end, for metrics; the service never depends on what it does.
 * `outcome`: issued, replayed (answered from the reply cache), coalesced (a duplicate of one in flight, which
 * answers), rejected (with `code`). `mode` is known once the request decoded.
 */
export interface RegistrationObserver {
  answered(event: {
    outcome: 'issued' | 'replayed' | 'coalesced' | 'rejected'
    code?: ErrorCode | undefined
    mode?: 'csr' | 'server_key' | undefined
    seconds: number
  }): void
  issuanceStarted(): void
  issuanceEnded(seconds: number, ok: boolean): void
  auditAppended(seconds: number): void
}

/** RegistrationServiceDeps are the collaborators the service calls, never back. */
export interface RegistrationServiceDeps {
  readonly issuer: Issuer
  readonly audit: AuditLog
  readonly publisher: ReplyPublisher
  readonly logger: Logger
  readonly observer?: RegistrationObserver
  /** Records every issuance durably (identity, serial, expiry, owner). */
  readonly registry?: Registry | undefined
}

/** DownstreamContext is how a gateway's request for one downstream device differs from a device's own. */
export interface DownstreamContext {
  readonly registeredBy: string
  readonly requestId: string
  readonly log: Logger
  /** vet runs the gateway policy on the order (after the device policy), with the identity held in flight. */
  readonly vet: (order: IssuanceOrder) => Promise<void>
}

interface InFlight {
  readonly key: string
  readonly controller: AbortController
}

const SHUTDOWN = (): RegistrationError =>
  new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down')

/**
 * RegistrationService answers registration requests:
 * decode ▶ deduplicate ▶ rate limit ▶ authorize ▶ issue ▶ audit ▶ reply.
 */
export class RegistrationService {
  readonly #deps: RegistrationServiceDeps
  readonly #options: RegistrationServiceOptions
  readonly #cache: ReplyCache
  readonly #limiter: RateLimiter
  readonly #inFlight = new Map<string, InFlight>()
  readonly #handlers = new Set<Promise<void>>()
  #closed = false
  /** replies just issued, told apart from replays (the cache hands out copies) for the observer */
  readonly #fresh = new WeakSet<Reply>()

  constructor(deps: RegistrationServiceDeps, options: RegistrationServiceOptions) {
    this.#deps = deps
    this.#options = options
    this.#cache = new ReplyCache(options.replyCache)
    this.#limiter = new RateLimiter(options.rateLimit)
  }

  /** handle answers one request payload from `identity`. It never throws: every failure becomes a reply. */
  handle(identity: string, payload: Buffer): void {
    const handler = this.#handle(identity, payload).finally(() => this.#handlers.delete(handler))
    this.#handlers.add(handler)
  }

  async #handle(identity: string, payload: Buffer): Promise<void> {
    const log = this.#deps.logger.child({ identity })
    const started = performance.now()
    let mode: 'csr' | 'server_key' | undefined
    const observe = (outcome: 'issued' | 'replayed' | 'coalesced' | 'rejected', code?: ErrorCode): void =>
      this.#deps.observer?.answered({ outcome, code, mode, seconds: (performance.now() - started) / 1000 })
    let requestId: string | undefined
    let reply: Reply
    try {
      if (this.#closed) throw SHUTDOWN()
      const request = decodeRequest(payload, this.#options.requestMaxBytes)
      requestId = request.requestId
      mode = request.csr === undefined ? 'server_key' : 'csr'
      const answer = await this.#answer(identity, request, log)
      if (answer === undefined) return observe('coalesced') // a duplicate of the one in flight, which answers
      reply = answer
      observe(this.#fresh.has(answer) ? 'issued' : 'replayed')
    } catch (err) {
      const error = toRegistrationError(err)
      observe('rejected', error.code)
      requestId ??= peekRequestId(payload)
      const level = error.code === 'INTERNAL_ERROR' || error.code === 'ISSUANCE_FAILED' ? 'error' : 'info'
      const ms = Math.round(performance.now() - started)
      log[level]({ requestId, code: error.code, ms, err: error.cause ?? error }, 'registration rejected')
      reply = rejectedReply(error, requestId)
    }
    await this.#deps.publisher
      .publish(identity, reply)
      .catch((err: unknown) => log.warn({ requestId, err }, 'reply could not be published'))
  }

  async #answer(identity: string, request: RegistrationRequest, log: Logger): Promise<Reply | undefined> {
    const key = idempotencyKey(identity, request)
    const cached = this.#cache.get(key)
    if (cached) return { ...cached }
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
      const reply = await this.#issue(order, request.requestId, controller, log)
      this.#cache.set(key, reply)
      this.#fresh.add(reply)
      return reply
    } finally {
      this.#inFlight.delete(identity)
    }
  }

  async #issue(
    order: IssuanceOrder,
    requestId: string | undefined,
    controller: AbortController,
    log: Logger,
  ): Promise<IssuedReply> {
    const { issuer, audit, publisher } = this.#deps
    const { registeredBy } = order
    const started = performance.now()
    // a downstream device's progress goes to its gateway with the batch, not to the device's own topic
    const pending = setTimeout(() => {
      if (registeredBy !== undefined) return
      const notice: Reply = { status: 'pending', ...(requestId === undefined ? {} : { requestId }) }
      publisher.publish(order.identity, notice).catch(() => {})
    }, this.#options.pendingAfterMs)
    const timeout = setTimeout(
      () => controller.abort(new RegistrationError('ISSUANCE_TIMEOUT', 'issuance timed out; retry later')),
      this.#options.issuanceTimeoutMs,
    )
    const observer = this.#deps.observer
    observer?.issuanceStarted()
    let issuedOk = false
    try {
      const credentials = await untilAborted(issuer.issue(order, controller.signal), controller.signal)
      issuedOk = true
      observer?.issuanceEnded((performance.now() - started) / 1000, true)
      const auditStarted = performance.now()
      const record = auditRecordFor(credentials, {
        identity: order.identity,
        issuer: issuer.name,
        keySource: order.csr ? 'device' : 'bridge',
        ...(registeredBy === undefined ? {} : { registeredBy }),
      })
      // both durable before the reply; the registry's commit overlaps the audit log's write
      await Promise.all([
        audit.append(record),
        this.#deps.registry?.record(registryEntry(record, credentials, requestId)),
      ])
      observer?.auditAppended((performance.now() - auditStarted) / 1000)
      log.info(
        { requestId, serialNumber: credentials.serialNumber, ms: Math.round(performance.now() - started) },
        'certificate issued',
      )
      return issuedReply(credentials, {
        requestId,
        extraTrustPem: this.#options.extraTrustPem,
        productionUrl: this.#options.productionUrl,
      })
    } finally {
      if (!issuedOk) observer?.issuanceEnded((performance.now() - started) / 1000, false)
      clearTimeout(pending)
      clearTimeout(timeout)
    }
  }

  /** cachedReplies is the number of replies held in the reply cache. */
  get cachedReplies(): number {
    return this.#cache.size
  }

  /**
   * issueFor runs the per-device path (policy ▶ vet ▶ issue ▶ audit ▶ registry) for a downstream identity a
   * gateway asks for. The identity is held in flight as for its own request, so no two registrations race.
   */
  async issueFor(
    identity: string,
    request: RegistrationRequest,
    context: DownstreamContext,
  ): Promise<IssuedReply> {
    if (this.#closed) throw SHUTDOWN()
    if (this.#inFlight.has(identity)) {
      throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
    }
    const controller = new AbortController()
    this.#inFlight.set(identity, { key: `downstream:${context.registeredBy}`, controller })
    try {
      const order = authorize(identity, request, this.#options.policy, context.registeredBy)
      await context.vet(order)
      const downstream = { ...order, registeredBy: context.registeredBy }
      return await this.#issue(downstream, context.requestId, controller, context.log)
    } finally {
      this.#inFlight.delete(identity)
    }
  }

  /** close refuses new requests, aborts registrations in flight (they answer ISSUER_UNAVAILABLE) and waits. */
  async close(): Promise<void> {
    this.#closed = true
    for (const { controller } of this.#inFlight.values()) controller.abort(SHUTDOWN())
    await Promise.allSettled([...this.#handlers])
    this.#cache.clear()
  }
}

function registryEntry(
  record: AuditRecord,
  credentials: Credentials,
  requestId: string | undefined,
): NewIssuance {
  return {
    ...record,
    issuedAt: new Date(record.time),
    notBefore: credentials.notBefore,
    notAfter: credentials.notAfter,
    requestId,
  }
}

/** idempotencyKey identifies a request: the same identity sending the same request is the same registration. */
function idempotencyKey(identity: string, request: RegistrationRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([identity, request]))
    .digest('base64')
}
