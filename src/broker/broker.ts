import type { AddressInfo, Server as NetServer } from 'node:net'
import type { SecureContextOptions, Server } from 'node:tls'
import { Aedes } from 'aedes'
import { LogBudget } from '../common/log-budget.js'
import { codecOf, type WireFormat } from '../protocol/codec/codecs.js'
import { encodeReply, type Reply } from '../protocol/messages.js'
import { type AccessControlOptions, createAccessControl } from './access-control.js'
import { boundedPersistence, type OfflineQueueOptions } from './bounded-persistence.js'
import { limitPacketSize } from './packet-size-limit.js'
import type { BrokerBackend } from './redis-backend.js'
import { storeGrantedSubscriptions } from './subscription-store.js'
import { createTlsListener, type TlsListenerOptions } from './tls-listener.js'

/**
 * BrokerObserver hears about connections, for metrics. `reason` of a refusal is a bounded name: an MQTT CONNACK
 * refusal (`identifier_rejected`, `not_authorized`, ...), `connect_error` or `max_connections`.
 */
export interface BrokerObserver {
  connectionOpened(): void
  connectionClosed(): void
  connectionRefused(reason: string): void
  tlsHandshakeFailed(): void
}

const CONNACK_REFUSALS: Record<number, string> = {
  1: 'unacceptable_protocol_version',
  2: 'identifier_rejected',
  3: 'server_unavailable',
  4: 'bad_username_or_password',
  5: 'not_authorized',
}

/** REFUSAL_REASONS: every `reason` a BrokerObserver may report (bounded metric label values). */
export const REFUSAL_REASONS: readonly string[] = [
  ...Object.values(CONNACK_REFUSALS),
  'connect_error',
  'max_connections',
]

/** BootstrapBrokerOptions configure the embedded MQTT broker that devices register through. */
export interface BootstrapBrokerOptions extends AccessControlOptions, OfflineQueueOptions {
  readonly host: string
  readonly port: number
  readonly tls: Omit<TlsListenerOptions, 'handshakeTimeoutMs'>
  readonly connectTimeoutMs: number
  readonly maxPacketBytes: number
  readonly observer?: BrokerObserver
  /** Shared sessions and message passing (Redis) for workers and replicas; unset: bounded, in memory. */
  readonly backend?: BrokerBackend | undefined
}

/** ListenError says which listener could not bind, naming its setting. */
export class ListenError extends Error {
  override readonly name = 'ListenError'
}

/** listen binds a server, rejecting with a ListenError that names `setting` when it cannot. */
export async function listen(server: NetServer, port: number, host: string, setting: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void =>
      reject(new ListenError(`${setting}: cannot listen on ${host}:${port} (${err.code ?? err.message})`))
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      resolve()
    })
  })
}

/** BootstrapBroker is Aedes behind the mutual-TLS listener, with the access-control hooks. */
export class BootstrapBroker {
  readonly #options: BootstrapBrokerOptions
  #aedes: Aedes | undefined
  #server: Server | undefined
  #listening = false

  constructor(options: BootstrapBrokerOptions) {
    this.#options = options
  }

  /** start listens and resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<AddressInfo> {
    const o = this.#options
    const budget = new LogBudget({ burst: 10, perMinute: 10 })
    const { grantedSubscription, ...hooks } = createAccessControl(o)
    const persistence = o.backend?.persistence ?? boundedPersistence(o)
    storeGrantedSubscriptions(persistence, grantedSubscription)
    const aedes = await Aedes.createBroker({
      ...(o.backend ? { mq: o.backend.mq } : {}),
      persistence,
      ...hooks,
      connectTimeout: o.connectTimeoutMs,
    })
    aedes.on('client', (client) => o.logger.debug({ clientId: client.id }, 'client connected'))
    aedes.on('clientDisconnect', (client) => o.logger.debug({ clientId: client.id }, 'client disconnected'))
    aedes.on('subscribe', (subscriptions, client) =>
      o.logger.debug({ clientId: client.id, topics: subscriptions.map((s) => s.topic) }, 'subscribed'),
    )
    // a CONNECT refused with a CONNACK return code carries it as `errorCode` (Aedes' handlers/connect.js)
    const refusalOf = (err: Error): string | undefined =>
      CONNACK_REFUSALS[(err as { errorCode?: number }).errorCode ?? 0]
    aedes.on('clientError', (client, err) => {
      o.logger.debug({ clientId: client.id, err: err.message }, 'client error')
      const refusal = refusalOf(err)
      if (refusal) o.observer?.connectionRefused(refusal)
    })
    aedes.on('connectionError', (_client, err) => {
      o.logger.debug({ err: err.message }, 'connection error')
      o.observer?.connectionRefused(refusalOf(err) ?? 'connect_error')
    })
    const server = createTlsListener({ ...o.tls, handshakeTimeoutMs: o.connectTimeoutMs }, (socket) => {
      limitPacketSize(aedes.handle(socket), o.maxPacketBytes)
      o.observer?.connectionOpened()
      socket.once('close', () => o.observer?.connectionClosed())
    })
    server.on('tlsClientError', (err) => {
      o.observer?.tlsHandshakeFailed()
      const suppressed = budget.take('tls')
      if (suppressed !== undefined) o.logger.debug({ err: err.message, suppressed }, 'TLS handshake failed')
    })
    server.on('drop', () => {
      o.observer?.connectionRefused('max_connections')
      const suppressed = budget.take('drop')
      if (suppressed !== undefined)
        o.logger.warn({ suppressed }, 'connection refused: limits.maxConnections reached')
    })
    this.#aedes = aedes
    this.#server = server
    try {
      await listen(server, o.port, o.host, 'listen.port')
    } catch (err) {
      this.#server = undefined
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      throw err
    }
    this.#listening = true
    return server.address() as AddressInfo
  }

  /**
   * publish sends a reply, in a wire format, to the identity's reply topic of that format, never retained: QoS 1
   * (kept for a persistent session that is offline), or QoS 0 when `queue` is false (delivered only to a device
   * that is connected).
   */
  publish(identity: string, reply: Reply, queue = true, format: WireFormat = 'json'): Promise<void> {
    return this.publishPayload(identity, encodeReply(reply, codecOf(format)), queue, format)
  }

  /** publishPayload sends an encoded reply (e.g. of the gateway extension) to the identity's reply topic of `format`. */
  publishPayload(
    identity: string,
    payload: Buffer,
    queue = true,
    format: WireFormat = 'json',
  ): Promise<void> {
    const aedes = this.#aedes
    if (!aedes || aedes.closed) return Promise.reject(new Error('broker is not running'))
    const topic = this.#options.topics.replyTopic(identity, format)
    const packet = { cmd: 'publish', topic, payload, qos: queue ? 1 : 0, retain: false, dup: false } as const
    return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())))
  }

  /** listening is true while the listener accepts connections. */
  get listening(): boolean {
    return this.#listening && (this.#server?.listening ?? false)
  }

  /** setSecureContext replaces the listener's TLS material for new handshakes; open connections keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    this.#server?.setSecureContext(options)
  }

  /** stopAccepting closes the listener to new connections; connected devices keep their sessions. */
  async stopAccepting(): Promise<void> {
    if (!this.#listening) return
    this.#listening = false
    this.#server?.close()
  }

  /** stop closes the listener and every connection. */
  async stop(): Promise<void> {
    const server = this.#server
    const aedes = this.#aedes
    this.#server = undefined
    if (!server || !aedes) return // never started, or stopped already
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await closed
  }
}
