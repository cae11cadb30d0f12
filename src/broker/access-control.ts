import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { AedesOptions, AedesPublishPacket, AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import { LogBudget } from '../common/log-budget.js'
import type { DirectReply } from '../protocol/aws/direct-reply.js'
import {
  AWS_TOPIC_PREFIX,
  type AwsRequestTopic,
  isAwsReplyTopic,
  parseAwsRequestTopic,
} from '../protocol/aws/topics.js'
import { WIRE_FORMATS, type WireFormat } from '../protocol/codec/codecs.js'
import type { DeviceIdentity, RequestConnection } from '../protocol/identity.js'
import type { Topics } from '../protocol/topics.js'
import { DirectReplies } from './direct-reply.js'
import { endConnection, guardHook } from './hook-guard.js'
import { type IdentityResult, type IdentitySource, identityOf } from './identity.js'
import type { Granted } from './subscription-store.js'

/** AccessControlOptions configure who may do what on the bootstrap broker. */
export interface AccessControlOptions {
  readonly topics: Topics
  readonly identitySource: IdentitySource
  readonly maxClientIdLength: number
  /** Live connections one identity may hold at once; one more is refused with CONNACK 3. */
  readonly maxConnectionsPerIdentity: number
  readonly logger: Logger
  /** The CAs of operational certificates (read per connection: they rotate). */
  readonly operationalCas?: (() => readonly X509Certificate[]) | undefined
  /**
   * Says why a verified identity is refused at CONNECT (the deny list; a revoked operational certificate), or
   * undefined; a promise when it must be looked up.
   */
  readonly denied?:
    | ((identity: DeviceIdentity) => string | undefined | Promise<string | undefined>)
    | undefined
  /**
   * Called with each registration request and the wire format of the topic it came on; the payload is never
   * forwarded to any client. `connection.open` stays true while a connection of the identity that was up when the
   * request came is still up.
   */
  readonly onRequest: (
    identity: DeviceIdentity,
    payload: Buffer,
    connection: RequestConnection,
    format: WireFormat,
  ) => void
  /**
   * With aws.enabled: called with each request on an AWS fleet-provisioning topic (docs/aws-fleet-provisioning.md)
   * and the connection to answer on; devices may then also subscribe to the exact reply topics of that set.
   */
  readonly onAwsRequest?:
    | ((identity: DeviceIdentity, topic: AwsRequestTopic, payload: Buffer, reply: DirectReply) => void)
    | undefined
}

// CONNACK return codes of MQTT 3.1.1 (3.2.2.3)
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const NOT_AUTHORIZED = 5

/** Hooks are the Aedes hooks access control is made of, typed as Aedes calls them. */
type Hooks = Required<
  Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>
>

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

/**
 * createAccessControl returns the Aedes hooks that enforce the security invariants: a device is its
 * certificate's identity; it may publish only requests and subscribe only to its own reply topic; its
 * client id lives in a namespace of its own, so no connection can take over another identity's session.
 * Every hook is guarded: an unexpected error ends that connection only.
 */
export function createAccessControl(options: AccessControlOptions) {
  const { topics, logger } = options
  /** isOwnReplyTopic: an identity's reply topics, one per wire format, and nothing else. */
  const isOwnReplyTopic = (identity: DeviceIdentity, topic: string): boolean =>
    WIRE_FORMATS.some((format) => topic === topics.replyTopic(identity.id, format))
  const identities = new WeakMap<Client, DeviceIdentity>()
  const direct = new DirectReplies()
  const aws = options.onAwsRequest
  const refusals = new WeakMap<Client, AuthenticateError>()
  const live = new Map<string, Set<Client>>()
  // refusal log lines per identity: 10 at once, then 10 a minute, each with a count of those suppressed
  const budget = new LogBudget({ burst: 10, perMinute: 10 })

  /** info logs a refusal within the identity's log budget, with the count of lines suppressed before it. */
  function info(key: string | undefined, fields: Record<string, unknown>, msg: string): void {
    const suppressed = budget.take(key ?? '')
    if (suppressed === undefined) return
    logger.info(suppressed > 0 ? { ...fields, suppressed } : fields, msg)
  }

  const preConnect: Hooks['preConnect'] = (client, packet, done) => {
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

  /** admit counts the connection against its identity's cap; a takeover of the same session is not extra. */
  function admit(client: Client, identity: string, sessionId: string): boolean {
    const clients = live.get(identity) ?? new Set<Client>()
    let others = 0
    for (const c of clients) if (c.id !== sessionId) others++
    if (others >= options.maxConnectionsPerIdentity) return false
    live.set(identity, clients)
    clients.add(client)
    client.conn.once('close', () => {
      clients.delete(client)
      if (clients.size === 0 && live.get(identity) === clients) live.delete(identity)
    })
    return true
  }

  const denial = (reason: string | undefined): AuthenticateError | undefined =>
    reason === undefined ? undefined : refusal(NOT_AUTHORIZED, reason)

  const authenticate: Hooks['authenticate'] = (client, _username, _password, done) => {
    const result = identityOf(
      client.conn as TLSSocket,
      options.identitySource,
      options.operationalCas?.() ?? [],
    )
    const refused = refusals.get(client) ?? (result.ok ? undefined : refusal(NOT_AUTHORIZED, result.reason))
    const denied = !refused && result.ok ? options.denied?.(result.identity) : undefined
    if (!(denied instanceof Promise)) return admitOrRefuse(client, result, refused ?? denial(denied), done)
    denied.then(
      (reason) => {
        // the connection may have gone while the lookup ran: it must not be counted against its identity
        if (client.conn.destroyed) return done(refusal(SERVER_UNAVAILABLE, 'connection closed'), false)
        admitOrRefuse(client, result, denial(reason), done)
      },
      (err: unknown) => {
        endConnection(client, 'authenticate', err, logger)
        done(refusal(SERVER_UNAVAILABLE, 'the deny check failed'), false)
      },
    )
  }

  function admitOrRefuse(
    client: Client,
    result: IdentityResult,
    refusedBefore: AuthenticateError | undefined,
    done: Parameters<Hooks['authenticate']>[3],
  ) {
    let refused = refusedBefore
    const sessionId = result.ok ? `${result.identity.id}:${client.id}` : ''
    if (!refused && result.ok && !admit(client, result.identity.id, sessionId)) {
      refused = refusal(
        SERVER_UNAVAILABLE,
        `identity already has ${options.maxConnectionsPerIdentity} connections (limits.maxConnectionsPerIdentity)`,
      )
    }
    if (refused || !result.ok) {
      const identity = result.ok ? result.identity.id : undefined
      info(identity, { clientId: client.id, reason: refused?.message }, 'connection refused')
      return done(refused ?? null, false)
    }
    identities.set(client, result.identity)
    // Aedes keys live clients and stored sessions by client.id: giving each identity its own namespace means a
    // client id chosen by one device can never collide with, take over, or resume another device's session.
    // test/unit/broker/pinned-internals.test.ts fails loudly if Aedes stops honouring this.
    ;(client as { id: string }).id = sessionId
    done(null, true)
  }

  const authorizePublish: Hooks['authorizePublish'] = (client, packet, done) => {
    const identity = client ? identities.get(client) : undefined
    const awsTopic =
      aws && packet.topic.startsWith(AWS_TOPIC_PREFIX) ? parseAwsRequestTopic(packet.topic) : undefined
    if (client && identity && aws && awsTopic) {
      // answered on /accepted or /rejected, never refused here: a refused QoS 1 publish ends the connection, and
      // the AWS SDK (a persistent session) reconnects and sends it again, forever
      aws(identity, awsTopic, packet.payload as Buffer, direct.of(client))
      packet.retain = false
      return done(null)
    }
    const format = topics.formatOf(packet.topic)
    if (!client || !identity || format === undefined) {
      info(identity?.id, { identity: identity?.id, topic: packet.topic }, 'publish refused; disconnecting')
      return done(new Error('publish not authorized'))
    }
    // the identity's connections up when the request came (the asker, and any subscriber of its replies)
    const present = [...(live.get(identity.id) ?? [client])]
    const connection = {
      get open() {
        return present.some((c) => !c.closed)
      },
    }
    options.onRequest(identity, packet.payload as Buffer, connection, format)
    // the request is consumed here: nothing is retained, and no client may subscribe to the request topic
    packet.retain = false
    done(null)
  }

  /** grantedSubscription is a filter as granted to the client (its QoS may change), or null: refused. */
  const grantedSubscription: Granted = (client, sub) => {
    const identity = identities.get(client)
    if (identity && aws && isAwsReplyTopic(sub.topic)) return { ...sub, qos: sub.qos === 0 ? 0 : 1 }
    // a QoS 2 subscription is granted as asked; replies are published at QoS 1, so they arrive at QoS 1
    return identity && isOwnReplyTopic(identity, sub.topic) ? sub : null
  }

  const authorizeSubscribe: Hooks['authorizeSubscribe'] = (client, sub, done) => {
    const granted = grantedSubscription(client, sub)
    if (!granted) {
      const identity = identities.get(client)
      info(identity?.id, { identity: identity?.id, topic: sub.topic }, 'subscription refused')
      return done(null, null) // SUBACK 0x80 for this filter; the connection stays up
    }
    done(null, granted)
  }

  function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    try {
      // defence in depth: only the client's own reply topic is ever delivered, never retained
      const identity = identities.get(client)
      // an AWS answer reaches only the connection it is written to (DirectReplies), never by routing
      if (identity && direct.forwards(client, packet)) return packet
      if (!identity || !isOwnReplyTopic(identity, packet.topic)) return null
      return packet.retain ? { ...packet, retain: false } : packet
    } catch (err) {
      endConnection(client, 'authorizeForward', err, logger)
      return null
    }
  }

  return {
    /** grantedSubscription is what a persistent session may keep of a SUBSCRIBE (subscription-store.ts). */
    grantedSubscription,
    preConnect: guardHook('preConnect', preConnect, logger),
    authenticate: guardHook('authenticate', authenticate, logger),
    authorizePublish: guardHook('authorizePublish', authorizePublish, logger),
    authorizeSubscribe: guardHook('authorizeSubscribe', authorizeSubscribe, logger),
    authorizeForward,
  }
}
