import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import type { IssuanceOrder } from '../issuers/issuer.js'
import type { Codec, WireFormat } from '../protocol/codec/codecs.js'
import { type ErrorCode, RegistrationError, toRegistrationError } from '../protocol/errors.js'
import {
  type DeviceResult,
  type DownstreamRequest,
  encodeGatewayReply,
  type GatewayBatch,
  type GatewayLimits,
  type GatewayReply,
  openGatewayBatch,
  readGatewayBatch,
} from '../protocol/gateway.js'
import type { PresentedCredential, RequestConnection } from '../protocol/identity.js'
import { peekRequestId } from '../protocol/messages.js'
import { Payload } from '../protocol/payload.js'
import type { DeviceRecord, Registry } from '../registry/registry.js'
import type { SharedState } from '../state/shared-state.js'
import { type Admission, admitDevice, checkSender, gatewayRejection, reasonOf } from './gateway-gate.js'
import type { GatewayPolicySource, GatewayRule } from './gateway-policy.js'
import type { LifecycleOptions } from './lifecycle-policy.js'
import type { Outcome, RegistrationObserver } from './observer.js'
import { spendToken } from './pipeline/paths.js'
import { errorFields } from './rejections.js'
import type { RegistrationService } from './service.js'

/** GatewayServiceDeps are the collaborators of the gateway path. */
export interface GatewayServiceDeps {
  readonly service: RegistrationService
  readonly registry: Registry
  readonly policy: GatewayPolicySource
  /** The deny list in force: a denied gateway's batch is refused whole. */
  readonly denied: LifecycleOptions['denied']
  /** Where the gateways' quota rates live (shared across processes with Redis), as the identities' limits. */
  readonly state: SharedState
  /**
   * Delivers an encoded reply on the gateway's own reply topic of the batch's wire format, to a connected gateway
   * only (never kept, never retained).
   */
  readonly publish: (identity: string, payload: Buffer, format: WireFormat) => Promise<void>
  readonly logger: Logger
  /** Hears how each downstream device's registration ended (via: gateway), for metrics. */
  readonly observer?: RegistrationObserver | undefined
}

/** GatewayServiceOptions are the validated `gateways` settings. */
export interface GatewayServiceOptions {
  readonly limits: GatewayLimits
  /** Downstream issuances of one batch in flight at once. */
  readonly concurrency: number
}

/**
 * GatewayService answers gateway batches: decode ▶ is a gateway ▶ each device through the one pipeline on the
 * gateway's path (its policy as the vet step, its quota rate) ▶ one reply per device ▶ `complete`.
 */
export class GatewayService {
  readonly #deps: GatewayServiceDeps
  readonly #options: GatewayServiceOptions
  readonly #batchesInFlight = new Set<string>()
  readonly #handlers = new Set<Promise<void>>()
  /** Per gateway, its new devices being issued right now (they count against its quota of devices). */
  readonly #reserved = new Map<string, number>()
  #closed = false

  constructor(deps: GatewayServiceDeps, options: GatewayServiceOptions) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * handle answers one batch payload from `gateway`, connected with `credential`. It never throws: every failure
   * becomes a reply.
   */
  handle(
    gateway: string,
    payload: Buffer | Payload,
    credential: PresentedCredential | undefined,
    connection: RequestConnection,
  ): void {
    const handler = this.#handle(gateway, payload, credential, connection).finally(() =>
      this.#handlers.delete(handler),
    )
    this.#handlers.add(handler)
  }

  async #handle(
    gateway: string,
    payload: Buffer | Payload,
    credential: PresentedCredential | undefined,
    connection: RequestConnection,
  ): Promise<void> {
    const log = this.#deps.logger.child({ gateway })
    const { bytes, codec } = Payload.of(payload)
    // a batch's format is part of it: its replies go to that format's topic
    const batchKey = createHash('sha256')
      .update(`${gateway}\n${codec.format}\n`)
      .update(bytes)
      .digest('base64')
    let requestId: string | undefined
    try {
      if (this.#closed) throw new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down')
      // the extension and version first: another version is UNSUPPORTED_VERSION for anyone, then the gateway
      const fields = openGatewayBatch(payload, this.#options.limits)
      const { policy, registry, denied } = this.#deps
      const rule = await checkSender(policy.current, registry, denied, gateway, credential)
      const batch = readGatewayBatch(fields, this.#options.limits)
      requestId = batch.requestId
      if (this.#batchesInFlight.has(batchKey)) return // a redelivery of the batch in flight, which will answer
      this.#batchesInFlight.add(batchKey)
      try {
        await this.#answer(gateway, rule, batch, connection, log, codec)
      } finally {
        this.#batchesInFlight.delete(batchKey)
      }
    } catch (err) {
      const error = toRegistrationError(err)
      requestId ??= peekRequestId(payload)
      log[error.code === 'INTERNAL_ERROR' ? 'error' : 'info'](
        { requestId, code: error.code, reason: reasonOf(error), ...errorFields(error) },
        'gateway batch rejected',
      )
      await this.#send(gateway, requestId, gatewayRejection(error), log, codec)
    }
  }

  async #answer(
    gateway: string,
    rule: GatewayRule,
    batch: GatewayBatch,
    connection: RequestConnection,
    log: Logger,
    codec: Codec,
  ): Promise<void> {
    const { requestId, devices } = batch
    let issued = 0
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < devices.length; i = next++) {
        const device = devices[i] as DownstreamRequest
        const result = await this.#device(gateway, rule, requestId, device, log)
        if (result.status === 'issued') issued++
        await this.#send(gateway, requestId, result, log, codec)
      }
    }
    const workers = Math.min(this.#options.concurrency, devices.length)
    await Promise.all(Array.from({ length: workers }, worker))
    log.info({ requestId, devices: devices.length, issued }, 'gateway batch answered')
    // replies go to connected sessions only: `complete` says the gateway got every device's reply before it,
    // which holds only while a connection of the gateway that was up when the batch came is still up (a
    // reconnect is another connection, which missed what was sent in between); otherwise the gateway gets no
    // `complete` and retries the batch
    if (!connection.open) {
      log.info({ requestId }, 'gateway batch: no connection of the gateway stayed up; no complete sent')
      return
    }
    await this.#send(
      gateway,
      requestId,
      { status: 'complete', issued, rejected: devices.length - issued },
      log,
      codec,
    )
  }

  async #device(
    gateway: string,
    rule: GatewayRule,
    requestId: string,
    device: DownstreamRequest,
    log: Logger,
  ): Promise<DeviceResult> {
    const { deviceId } = device
    const started = performance.now()
    const mode = device.csr === undefined ? 'server_key' : 'csr'
    const observe = (outcome: Outcome, code?: ErrorCode): void =>
      this.#deps.observer?.answered({
        outcome,
        code,
        mode: device.refused ? undefined : mode,
        seconds: (performance.now() - started) / 1000,
        via: 'gateway',
      })
    try {
      if (device.refused) throw device.refused
      let outcome: Outcome = 'issued'
      let admission: Admission | undefined
      const vet = async (order: IssuanceOrder, held: DeviceRecord | undefined): Promise<Admission> => {
        admission = await admitDevice(this.#deps, this.#reserved, {
          gateway,
          rule,
          order,
          device: held,
          serverKey: device.csr === undefined,
        })
        return admission
      }
      try {
        const reply = await this.#deps.service.issueFor(deviceId, device, {
          registeredBy: gateway,
          requestId,
          log: log.child({ identity: deviceId }),
          vet,
          spend: () =>
            spendToken(this.#deps.state, `gateway:${gateway}`, rule.quota, 'gateway quota rate exceeded'),
          replayed: () => {
            outcome = 'replayed'
          },
        })
        observe(outcome)
        const { requestId: _, ...issued } = reply
        return { ...issued, deviceId }
      } finally {
        admission?.release()
      }
    } catch (err) {
      const error = toRegistrationError(err)
      observe('rejected', error.code)
      const level = error.code === 'INTERNAL_ERROR' || error.code === 'ISSUANCE_FAILED' ? 'error' : 'info'
      log[level](
        { requestId, deviceId, code: error.code, reason: reasonOf(error), ...errorFields(error) },
        'downstream registration rejected',
      )
      return { ...gatewayRejection(error), deviceId }
    }
  }

  #send(
    gateway: string,
    requestId: string | undefined,
    reply: GatewayReply,
    log: Logger,
    codec: Codec,
  ): Promise<void> {
    const warn = (err: unknown): void => log.warn({ requestId, err }, 'gateway reply could not be published')
    return this.#deps.publish(gateway, encodeGatewayReply(requestId, reply, codec), codec.format).catch(warn)
  }

  /** close refuses new batches and waits for those in flight (the service's close aborts their issuances). */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#handlers])
  }
}
