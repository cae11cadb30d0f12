import { LRUCache } from 'lru-cache'
import { sleep } from '../common/abortable.js'
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
import { Payload } from '../protocol/payload.js'
import { MemoryState } from '../state/memory.js'
import { answerAs, holdsKey } from './bundle.js'
import { InFlight } from './in-flight.js'
import type { Outcome } from './observer.js'
import { awsPath, type DownstreamContext, devicePath, gatewayPath } from './pipeline/paths.js'
import type {
  Path,
  Pipeline,
  Registration,
  RegistrationServiceDeps,
  RegistrationServiceOptions,
  Steps,
} from './pipeline/registration.js'
import { run } from './pipeline/run.js'
import { STEPS } from './pipeline/steps.js'
import { keepRejection, RejectionLog } from './rejections.js'

/**
 * Answer is the service's final answer to one request, for the wiring to deliver on the identity's reply topic:
 * kept for an offline persistent session when `queue` is true (QoS 1), to a connected device only otherwise.
 */
export interface Answer {
  readonly reply: Reply
  readonly queue: boolean
}

export type { RegistrationServiceDeps, RegistrationServiceOptions } from './pipeline/registration.js'

/**
 * RegistrationService answers registration requests: a device's payload is decoded, then every request (a
 * device's registration or renewal, each device of a gateway batch) runs the one pipeline (pipeline/steps.ts);
 * routeRequests (route.ts) publishes the answer.
 */
export class RegistrationService {
  readonly #pipeline: Pipeline
  readonly #device: Path
  readonly #aws: Path
  readonly #steps: Steps
  readonly #handlers = new Set<Promise<unknown>>()
  readonly #rejections = new RejectionLog()
  #closed = false

  constructor(deps: RegistrationServiceDeps, options: RegistrationServiceOptions) {
    const state = deps.state ?? new MemoryState()
    const { ttlSeconds, maxEntries } = options.replyCache
    this.#pipeline = {
      ...deps,
      settings: options,
      state,
      inFlight: new InFlight(state, options.leaseMs),
      cache:
        ttlSeconds > 0 && maxEntries > 0
          ? new LRUCache({ max: maxEntries, ttl: ttlSeconds * 1000, ttlAutopurge: false })
          : undefined,
      retryWindowMs: ttlSeconds * 1000,
      closed: () => this.#closed,
    }
    this.#steps = deps.steps ?? STEPS
    this.#device = devicePath(state, options.rateLimit)
    this.#aws = awsPath(this.#device)
  }

  /**
   * provision runs an AWS fleet-provisioning create call (docs/aws-fleet-provisioning.md) through the same pipeline
   * as a device's own request, on the AWS path (its certificate is `pending` until RegisterThing). `decode` reads the
   * request; a failure to read it spends a rate-limit token like a v1 request. No `pending` notice is sent (AWS has
   * none). Resolves with the issued reply, the error, or undefined when another process answers (the same request in
   * flight there).
   */
  provision(
    identity: string,
    decode: () => RegistrationRequest,
    credential?: PresentedCredential,
  ): Promise<{ reply: IssuedReply } | { error: RegistrationError } | undefined> {
    return this.#track(this.#provision(identity, decode, credential))
  }

  async #provision(identity: string, decode: () => RegistrationRequest, credential?: PresentedCredential) {
    const { observer } = this.#pipeline
    const log = this.#pipeline.logger.child({ identity, api: 'aws' })
    const started = performance.now()
    let mode: 'csr' | 'server_key' | undefined
    const observe = (outcome: Outcome, code?: ErrorCode): void =>
      observer?.answered({ outcome, code, mode, seconds: (performance.now() - started) / 1000, via: 'aws' })
    try {
      const request = await this.#decode(identity, decode)
      mode = request.csr === undefined ? 'server_key' : 'csr'
      const registration: Registration = {
        identity,
        request,
        credential,
        log,
        controller: new AbortController(),
      }
      const done = await run(this.#pipeline, registration, this.#aws, this.#steps)
      observe('silent' in done ? 'coalesced' : done.outcome)
      return 'silent' in done ? undefined : { reply: done.reply }
    } catch (err) {
      const error = toRegistrationError(err)
      observe('rejected', error.code)
      this.#rejections.log(identity, error, undefined, log, Math.round(performance.now() - started))
      return { error }
    }
  }

  /**
   * handle answers one request payload from `identity`; undefined when another process or request answers (the
   * same request in flight). It never rejects: every failure becomes a `rejected` answer.
   */
  handle(
    identity: string,
    payload: Buffer | Payload,
    credential?: PresentedCredential,
  ): Promise<Answer | undefined> {
    return this.#track(this.#handle(identity, payload, credential))
  }

  async #handle(
    identity: string,
    payload: Buffer | Payload,
    credential: PresentedCredential | undefined,
  ): Promise<Answer | undefined> {
    const { logger, observer, settings } = this.#pipeline
    const log = logger.child({ identity })
    const started = performance.now()
    let mode: 'csr' | 'server_key' | undefined
    const observe = (outcome: Outcome, code?: ErrorCode): void =>
      observer?.answered({ outcome, code, mode, seconds: (performance.now() - started) / 1000 })
    let requestId: string | undefined
    try {
      const request = await this.#decode(identity, payload)
      requestId = request.requestId
      mode = request.csr === undefined ? 'server_key' : 'csr'
      const controller = new AbortController()
      const { format } = Payload.of(payload).codec
      const notify = (notice: PendingReply): void => this.#pipeline.notify(identity, notice, format)
      const registration: Registration = { identity, request, credential, log, controller, notify }
      const done = await run(this.#pipeline, registration, this.#device, this.#steps)
      if ('silent' in done) {
        observe('coalesced')
        return undefined
      }
      // a bundle costs milliseconds of CPU: a replay wrapped in a new one spends a token like a new request
      if (done.outcome === 'replayed' && request.pkcs12) await this.#device.spend(identity)
      const reply = await answerAs(done.reply, request, identity)
      observe(done.outcome)
      // a reply with a key (PEM or bundle) is kept for an offline session only where sessions are this process's
      const queue = settings.queueGeneratedKeys !== false || !holdsKey(reply)
      return { reply, queue }
    } catch (err) {
      const error = toRegistrationError(err)
      observe('rejected', error.code)
      requestId ??= peekRequestId(payload)
      this.#rejections.log(identity, error, requestId, log, Math.round(performance.now() - started))
      return { reply: rejectedReply(error, requestId), queue: keepRejection(error) }
    }
  }

  /** #decode validates the payload; an invalid request spends a rate-limit token like a valid one. */
  async #decode(
    identity: string,
    payload: Buffer | Payload | (() => RegistrationRequest),
  ): Promise<RegistrationRequest> {
    try {
      if (typeof payload === 'function') return payload()
      return decodeRequest(payload, this.#pipeline.settings.requestMaxBytes)
    } catch (err) {
      await this.#device.spend(identity)
      throw err
    }
  }

  /**
   * issueFor runs the pipeline for a downstream identity a gateway asks for, on the gateway's path: its entry in the
   * batch under the batch's requestId, the gateway policy as the vet step, the gateway's quota rate.
   */
  async issueFor(
    identity: string,
    request: RegistrationRequest,
    context: DownstreamContext,
  ): Promise<IssuedReply> {
    const { log, requestId } = context
    const controller = new AbortController()
    const entry = { ...request, requestId }
    const registration = { identity, request: entry, log, controller }
    const done = await this.#track(run(this.#pipeline, registration, gatewayPath(context), this.#steps))
    if ('silent' in done) throw new Error('unreachable: a gateway path is never silent')
    if (done.outcome === 'replayed') context.replayed?.()
    if (done.outcome === 'replayed' && request.pkcs12) await context.spend(identity)
    return this.#track(answerAs(done.reply, request, identity))
  }

  #track<T>(handler: Promise<T>): Promise<T> {
    const tracked = handler.finally(() => this.#handlers.delete(tracked))
    this.#handlers.add(tracked)
    return tracked
  }

  /** cachedReplies is the number of replies held in the reply cache. */
  get cachedReplies(): number {
    return this.#pipeline.cache?.size ?? 0
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
    this.#pipeline.inFlight.abortAll(
      new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down'),
    )
    await Promise.allSettled([...this.#handlers])
    this.#pipeline.cache?.clear()
  }
}
