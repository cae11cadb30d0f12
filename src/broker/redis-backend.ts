import type { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import type { AedesOptions } from 'aedes'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'
import { Redis } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'

/** UNHEARD_SYS are the $SYS topics Aedes announces to nobody (see redisBackend). */
const UNHEARD_SYS = /^\$SYS\/[^/]+\/(new\/subscribes|new\/unsubscribes|disconnect\/clients)$/

/** BrokerBackend is where Aedes keeps sessions and passes messages between broker instances. */
export interface BrokerBackend {
  readonly mq: NonNullable<AedesOptions['mq']>
  readonly persistence: NonNullable<AedesOptions['persistence']>
  close(): Promise<void>
}

/**
 * redisBackend is the Aedes ecosystem's own Redis emitter (mqemitter-redis) and persistence
 * (aedes-persistence-redis), so that a device's session, subscriptions and queued replies follow it to any
 * process or replica, and a reply published by one process reaches the device connected to another.
 * Queued messages expire after `ttlMs`. The bridge never queues a reply holding a private key (app/wire-registration.ts).
 */
export function redisBackend(
  url: string,
  ttlMs: number,
  requestTopics: readonly string[],
  onError: (err: Error) => void,
): BrokerBackend {
  const connection = (): Redis => {
    const redis = new Redis(url, { maxRetriesPerRequest: 2 })
    redis.on('error', () => {}) // commands report their own failures; ioredis keeps reconnecting
    return redis
  }
  const conn = connection()
  // aedes-persistence-redis 11.2 issues LREM and RPUSH without waiting for them (tidying lists of expired packets
  // and wills): when Redis drops, ioredis rejects them with "Connection is closed." and nothing hears it, which
  // would end the process. A handler on each such promise (the caller still gets the same promise) keeps an
  // outage an outage: every command the bridge waits for reports it
  for (const name of ['lrem', 'rpush'] as const) {
    const command = conn[name].bind(conn) as (...args: unknown[]) => Promise<unknown>
    ;(conn as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const pending = command(...args)
      pending.catch(() => {})
      return pending
    }
  }
  const subConn = connection()
  const pubConn = connection()
  const mq = mqemitterRedis({ subConn, pubConn })
  // mqemitter-redis closes by QUIT and waits until both connections emit 'end', which ioredis never does for a
  // connection that is reconnecting (Redis down): Aedes closes the emitter on every stop, which then hung. End
  // the connections here, Redis or not, and close the emitter itself (MQEmitter's own close, kept as _close).
  const emitter = mq as unknown as { closing: boolean; _close(cb: () => void): void }
  mq.close = (cb: () => void) => {
    emitter.closing = true
    subConn.disconnect()
    pubConn.disconnect()
    emitter._close(cb)
  }
  // a lost connection is reported here too; unheard, it would crash the process (ioredis reconnects)
  ;(mq as unknown as { state: EventEmitter }).state.on('error', onError)
  const persistence = new AsyncRedisPersistence({
    conn,
    packetTTL: () => Math.max(1, Math.ceil(ttlMs / 1000)),
  })
  const methods = persistence as unknown as Record<string, (...args: unknown[]) => AsyncIterable<unknown>>
  for (const name of STREAMS) {
    const method = methods[name]
    if (typeof method !== 'function') throw new Error(`aedes-persistence-redis has no ${name}()`)
    methods[name] = (...args: unknown[]) => Readable.from(method.apply(persistence, args))
  }
  // a request (on any format's request topic) is consumed where it arrives (access-control's authorizePublish) and
  // no client may subscribe to its topic: it never crosses Redis (one PUBLISH, and its delivery to every process,
  // saved per registration). Nor do Aedes' announcements of a subscribe, an unsubscribe and a disconnect: no client
  // may subscribe to $SYS and Aedes listens for none of them (only for new clients, heartbeats and births, which
  // stay): three more saved. Nothing under $aws/ travels by routing either: its requests are consumed where they
  // arrive and its answers are written to the asking connection only (direct-reply.ts)
  const emit = mq.emit.bind(mq) as (packet: { topic: string }, done?: () => void) => void
  ;(mq as unknown as { emit: typeof emit }).emit = (packet, done) =>
    requestTopics.includes(packet.topic) || packet.topic.startsWith('$aws/') || UNHEARD_SYS.test(packet.topic)
      ? done?.()
      : emit(packet, done)
  return {
    mq: mq as unknown as BrokerBackend['mq'],
    persistence: persistence as unknown as BrokerBackend['persistence'],
    async close() {
      // not persistence.destroy(): it unsubscribes through the emitter's connection first, a command that waits
      // forever for a Redis that is down; ending the connections is all a stop needs
      conn.disconnect()
      // Aedes closes the emitter when it stops; after a start that failed before the broker, it is closed here
      await new Promise<void>((resolve) => mq.close(() => resolve()))
    },
  }
}

/**
 * STREAMS are the persistence methods Aedes 1.2 pipes (stream.pipe) but aedes-persistence-redis 11.2 returns as
 * async iterables; redisBackend makes each return a Readable (Readable.from takes an async iterable and a stream
 * alike), as Aedes' own in-memory persistence does. test/integration/cluster.test.ts subscribes through it: a
 * change in either package that breaks this fails there.
 */
const STREAMS = [
  'createRetainedStreamCombi',
  'createRetainedStream',
  'outgoingStream',
  'streamWill',
  'getClientList',
]
