import type { TLSSocket } from 'node:tls'
import type {
  AedesPublishPacket,
  AuthenticateError,
  Client,
  ConnectPacket,
  PublishPacket,
  Subscription,
} from 'aedes'
import type { Logger } from 'pino'
import type { Topics } from '../protocol/topics.js'
import { type DeviceIdentity, type IdentitySource, identityOf } from './identity.js'

/** AccessControlOptions configure who may do what on the bootstrap broker. */
export interface AccessControlOptions {
  readonly topics: Topics
  readonly identitySource: IdentitySource
  readonly maxClientIdLength: number
  readonly logger: Logger
  /** Called with each registration request; the payload is never forwarded to any client. */
  readonly onRequest: (identity: DeviceIdentity, payload: Buffer) => void
}

// CONNACK return codes of MQTT 3.1.1 (3.2.2.3)
const IDENTIFIER_REJECTED = 2
const NOT_AUTHORIZED = 5

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

/**
 * createAccessControl returns the Aedes hooks that enforce the security invariants: a device is its
 * certificate's identity; it may publish only requests and subscribe only to its own reply topic; its
 * client id lives in a namespace of its own, so no connection can take over another identity's session.
 */
export function createAccessControl(options: AccessControlOptions) {
  const { topics, logger } = options
  const identities = new WeakMap<Client, DeviceIdentity>()
  const refusals = new WeakMap<Client, AuthenticateError>()

  function preConnect(
    client: Client,
    packet: ConnectPacket,
    done: (err: Error | null, ok: boolean) => void,
  ): void {
    // [MQTT-3.1.3-8] an empty client id requires a clean session
    if (packet.clientId === '' && !packet.clean) {
      refusals.set(client, refusal(IDENTIFIER_REJECTED, 'empty client id requires cleanSession=1'))
    } else if (packet.clientId.length > options.maxClientIdLength) {
      refusals.set(client, refusal(IDENTIFIER_REJECTED, `client id longer than ${options.maxClientIdLength}`))
    } else if (packet.will) {
      refusals.set(client, refusal(NOT_AUTHORIZED, 'will messages are not allowed'))
    }
    done(null, true)
  }

  function authenticate(
    client: Client,
    _username: string | undefined,
    _password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const refused = refusals.get(client)
    const result = identityOf(client.conn as TLSSocket, options.identitySource)
    if (!result.ok || refused) {
      const reason = refused?.message ?? (result.ok ? '' : result.reason)
      logger.info({ clientId: client.id, reason }, 'connection refused')
      done(refused ?? refusal(NOT_AUTHORIZED, reason), false)
      return
    }
    identities.set(client, result.identity)
    // Aedes keys live clients and stored sessions by client.id: giving each identity its own namespace means a
    // client id chosen by one device can never collide with, take over, or resume another device's session.
    ;(client as { id: string }).id = `${result.identity.id}:${client.id}`
    done(null, true)
  }

  function authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    done: (err?: Error | null) => void,
  ): void {
    const identity = client ? identities.get(client) : undefined
    if (!identity || packet.topic !== topics.request) {
      logger.info({ identity: identity?.id, topic: packet.topic }, 'publish refused; disconnecting')
      done(new Error('publish not authorized'))
      return
    }
    options.onRequest(identity, packet.payload as Buffer)
    // the request is consumed here: nothing is retained, and no client may subscribe to the request topic
    packet.retain = false
    done(null)
  }

  function authorizeSubscribe(
    client: Client,
    sub: Subscription,
    done: (err: Error | null, sub?: Subscription | null) => void,
  ): void {
    const identity = identities.get(client)
    if (!identity || sub.topic !== topics.replyTopic(identity.id)) {
      logger.info({ identity: identity?.id, topic: sub.topic }, 'subscription refused')
      done(null, null) // SUBACK 0x80 for this filter; the connection stays up
      return
    }
    done(null, sub)
  }

  function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    // defence in depth: only the client's own reply topic is ever delivered, never retained
    const identity = identities.get(client)
    if (!identity || packet.topic !== topics.replyTopic(identity.id)) return null
    return packet.retain ? { ...packet, retain: false } : packet
  }

  return { preConnect, authenticate, authorizePublish, authorizeSubscribe, authorizeForward }
}
