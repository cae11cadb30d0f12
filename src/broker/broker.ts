import type { AddressInfo } from 'node:net'
import type { Server } from 'node:tls'
import { Aedes } from 'aedes'
import type { Logger } from 'pino'
import { encodeReply, type Reply } from '../protocol/messages.js'
import type { Topics } from '../protocol/topics.js'
import type { ReplyPublisher } from '../registration/service.js'
import { createAccessControl } from './access-control.js'
import type { DeviceIdentity, IdentitySource } from './identity.js'
import { limitPacketSize } from './packet-size-limit.js'
import { createTlsListener, type TlsListenerOptions } from './tls-listener.js'

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
    aedes.on('clientError', (client, err) =>
      o.logger.debug({ clientId: client.id, err: err.message }, 'client error'),
    )
    aedes.on('connectionError', (_client, err) => o.logger.debug({ err: err.message }, 'connection error'))
    const server = createTlsListener({ ...o.tls, handshakeTimeoutMs: o.connectTimeoutMs }, (socket) => {
      limitPacketSize(aedes.handle(socket), o.maxPacketBytes)
    })
    server.on('tlsClientError', (err) => o.logger.debug({ err: err.message }, 'TLS handshake failed'))
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
