import type { AddressInfo } from 'node:net'
import type { SecureContextOptions, Server } from 'node:tls'
import { Aedes } from 'aedes'
import type { Logger } from 'pino'
import { encodeReply, type Reply } from '../protocol/messages.js'
import type { Topics } from '../protocol/topics.js'
import type { ReplyPublisher } from '../registration/service.js'
import { createAccessControl } from './access-control.js'
import type { DeviceIdentity, IdentitySource } from './identity.js'
import { limitPacketSize } from './packet-size-limit.js'
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

/** BootstrapBrokerOptions configure the embedded MQTT broker that devices register through. */
export interface BootstrapBrokerOptions {
  readonly host: string
  readonly port: number
  readonly tls: Omit<TlsListenerOptions, 'handshakeTimeoutMs'>
  readonly topics: Topics
  readonly identitySource: IdentitySource
  readonly connectTimeoutMs: number
  readonly maxPacketBytes: number
  readonly maxClientIdLength: number
  readonly logger: Logger
  readonly onRequest: (identity: DeviceIdentity, payload: Buffer) => void
  readonly observer?: BrokerObserver
}

/** BootstrapBroker is Aedes behind the mutual-TLS listener, with the access-control hooks. */
export class BootstrapBroker implements ReplyPublisher {
  readonly #options: BootstrapBrokerOptions
  #aedes: Aedes | undefined
  #server: Server | undefined

  constructor(options: BootstrapBrokerOptions) {
    this.#options = options
  }

  /** start listens and resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<AddressInfo> {
    const o = this.#options
    const aedes = await Aedes.createBroker({
      ...createAccessControl({
        topics: o.topics,
        identitySource: o.identitySource,
        maxClientIdLength: o.maxClientIdLength,
        logger: o.logger,
        onRequest: o.onRequest,
      }),
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
      o.logger.debug({ err: err.message }, 'TLS handshake failed')
      o.observer?.tlsHandshakeFailed()
    })
    server.on('drop', () => o.observer?.connectionRefused('max_connections'))
    this.#aedes = aedes
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.port, o.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    return server.address() as AddressInfo
  }

  /** publish sends a reply to the identity's reply topic: QoS 1, never retained. */
  publish(identity: string, reply: Reply): Promise<void> {
    return this.publishPayload(identity, encodeReply(reply))
  }

  /** publishPayload sends an encoded reply (e.g. of the gateway extension) to the identity's reply topic. */
  publishPayload(identity: string, payload: Buffer): Promise<void> {
    const aedes = this.#aedes
    if (!aedes || aedes.closed) return Promise.reject(new Error('broker is not running'))
    const packet = {
      cmd: 'publish' as const,
      topic: this.#options.topics.replyTopic(identity),
      payload,
      qos: 1 as const,
      retain: false,
      dup: false,
    }
    return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())))
  }

  /** listening is true while the listener accepts connections. */
  get listening(): boolean {
    return this.#server?.listening ?? false
  }

  /** setSecureContext replaces the listener's TLS material for new handshakes; open connections keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    this.#server?.setSecureContext(options)
  }

  /** stop closes the listener and every connection. */
  async stop(): Promise<void> {
    const server = this.#server
    const aedes = this.#aedes
    this.#server = undefined
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => (aedes ? aedes.close(() => resolve()) : resolve()))
      await closed
    }
  }
}
