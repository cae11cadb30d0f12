import { Readable } from 'node:stream'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import aedesPersistence, { type AedesMemoryPersistence } from 'aedes-persistence'
import type { Logger } from 'pino'
import { LogBudget } from '../common/log-budget.js'

/** OfflineQueueOptions bound what the broker keeps for persistent sessions (cleanSession=0). */
export interface OfflineQueueOptions {
  /** Replies kept at once for one identity's persistent sessions while they are offline or unacknowledged. */
  readonly maxQueuedRepliesPerIdentity: number
  /** Replies kept at once in all (registration.replyCacheMaxEntries). */
  readonly maxQueuedReplies: number
  /** How long a kept reply may wait for its session (registration.replyCacheSeconds: a key is never held longer). */
  readonly queuedReplyTtlMs: number
  /**
   * Persistent sessions (stored subscriptions) kept for one identity (limits.maxSessionsPerIdentity); past it the
   * one unused longest that is not connected is dropped.
   */
  readonly maxSessionsPerIdentity: number
  /** How long a stored session outlives its last connection (limits.sessionExpirySeconds), with its replies. */
  readonly sessionExpiryMs: number
  /** Hears what is not kept or is dropped: warnings within a log budget per identity, expiry at debug. */
  readonly logger: Logger
}

type Packet = Omit<AedesPublishPacket, 'messageId'> & {
  brokerId?: string | undefined
  brokerCounter?: number | undefined
  messageId?: number | undefined
}

// a CommonJS module whose export is the factory of the in-memory persistence
const memory = aedesPersistence as unknown as () => AedesMemoryPersistence

/** SessionCalls are the persistence calls in the promise form Aedes 1.x makes them (no callback). */
interface SessionCalls {
  setup(broker: Aedes): Promise<void>
  addSubscriptions(client: Client, subs: unknown[]): Promise<void>
  subscriptionsByClient(client: { id: string }): Promise<unknown[]>
  cleanSubscriptions(client: { id: string }): Promise<unknown>
  cleanIncoming?: ((client: { id: string }) => Promise<unknown>) | undefined
}

type Entry = { packet: Packet; readonly expiresAt: number }

/** SWEEP_MS is how often expired messages are dropped even for sessions that never come back. */
const SWEEP_MS = 10_000

/** identityOfSession reads the identity from a client id scoped by access control (`<identity>:<client id>`). */
const identityOfSession = (clientId: string): string => clientId.slice(0, Math.max(0, clientId.indexOf(':')))

/**
 * boundedPersistence is Aedes' in-memory persistence with its outgoing queue (the messages kept for persistent
 * sessions: offline delivery, and QoS 1 messages awaiting PUBACK) replaced, through the persistence interface
 * Aedes documents, by one that is bounded per identity and expires its messages.
 */
export function boundedPersistence(options: OfflineQueueOptions): AedesMemoryPersistence {
  const { logger } = options
  const now = Date.now
  const budget = new LogBudget({ burst: 10, perMinute: 10 })
  const persistence = memory()
  const queues = new Map<string, Entry[]>()
  const perIdentity = new Map<string, number>()

  let total = 0
  const count = (identity: string, delta: number): void => {
    total += delta
    const n = (perIdentity.get(identity) ?? 0) + delta
    if (n > 0) perIdentity.set(identity, n)
    else perIdentity.delete(identity)
  }
  const prune = (clientId: string): Entry[] => {
    const queue = queues.get(clientId) ?? []
    const t = now()
    const live = queue.filter((e) => e.expiresAt > t)
    if (live.length !== queue.length) count(identityOfSession(clientId), live.length - queue.length)
    if (live.length > 0) queues.set(clientId, live)
    else queues.delete(clientId)
    return live
  }
  const enqueue = (clientId: string, packet: Packet): void => {
    if (options.queuedReplyTtlMs <= 0 || options.maxQueuedRepliesPerIdentity <= 0) return // nothing is kept
    const identity = identityOfSession(clientId)
    const full = (): boolean =>
      (perIdentity.get(identity) ?? 0) >= options.maxQueuedRepliesPerIdentity ||
      total >= options.maxQueuedReplies
    if (full()) {
      for (const id of [...queues.keys()]) prune(id)
      if (full()) {
        const suppressed = budget.take(`queue:${identity}`)
        if (suppressed !== undefined)
          logger.warn({ identity, suppressed }, 'reply not kept: queued replies are at their bound')
        return
      }
    }
    const queue = queues.get(clientId) ?? []
    queue.push({ packet: { ...packet }, expiresAt: now() + options.queuedReplyTtlMs })
    queues.set(clientId, queue)
    count(identity, 1)
  }

  // stored sessions: per identity, client id ▶ when last connected (Map order: least recently used first)
  const sessions = new Map<string, Map<string, number>>()
  const connected = new Map<string, number>()
  const calls = persistence as unknown as SessionCalls
  const cleanSubscriptions = calls.cleanSubscriptions.bind(persistence)
  const cleanIncoming = calls.cleanIncoming?.bind(persistence)
  const forget = (clientId: string): void => {
    const identity = identityOfSession(clientId)
    const mine = sessions.get(identity)
    mine?.delete(clientId)
    if (mine?.size === 0) sessions.delete(identity)
  }
  const drop = (clientId: string, reason: 'limit' | 'expired') => {
    const identity = identityOfSession(clientId)
    forget(clientId)
    const queued = queues.get(clientId)?.length ?? 0
    if (queued > 0) count(identity, -queued)
    queues.delete(clientId)
    void cleanSubscriptions({ id: clientId }).catch(() => {})
    void cleanIncoming?.({ id: clientId }).catch(() => {})
    if (reason === 'expired') return logger.debug({ identity }, 'stored session expired')
    const suppressed = budget.take(`sessions:${identity}`)
    if (suppressed !== undefined)
      logger.warn({ identity, suppressed }, 'stored session dropped: the identity has too many')
  }
  const touch = (clientId: string): void => {
    const identity = identityOfSession(clientId)
    const mine = sessions.get(identity) ?? new Map<string, number>()
    mine.delete(clientId)
    mine.set(clientId, now())
    sessions.set(identity, mine)
    for (const id of [...mine.keys()]) {
      if (mine.size <= options.maxSessionsPerIdentity) break
      if (id !== clientId && !connected.has(id)) drop(id, 'limit')
    }
  }

  const sweep = setInterval(
    () => {
      let dropped = 0
      for (const [id, queue] of [...queues]) dropped += queue.length - prune(id).length
      if (dropped > 0) logger.debug({ count: dropped }, 'queued replies expired')
      const before = now() - options.sessionExpiryMs
      for (const mine of [...sessions.values()])
        for (const [id, seen] of [...mine]) if (seen <= before && !connected.has(id)) drop(id, 'expired')
    },
    Math.max(1000, Math.min(SWEEP_MS, options.queuedReplyTtlMs, options.sessionExpiryMs)),
  )
  sweep.unref()
  const destroy = persistence.destroy.bind(persistence)
  const setup = calls.setup.bind(persistence)
  const addSubscriptions = calls.addSubscriptions.bind(persistence)
  const subscriptionsByClient = calls.subscriptionsByClient.bind(persistence)

  Object.assign(persistence, {
    // the session hooks use Aedes' documented persistence calls and its public client events only
    async setup(broker: Aedes) {
      await setup(broker)
      broker.on('client', (client) => connected.set(client.id, (connected.get(client.id) ?? 0) + 1))
      broker.on('clientDisconnect', (client) => {
        const left = (connected.get(client.id) ?? 1) - 1
        if (left > 0) connected.set(client.id, left)
        else connected.delete(client.id)
        if (sessions.get(identityOfSession(client.id))?.has(client.id)) touch(client.id) // its expiry starts now
      })
    },
    async addSubscriptions(client: Client, subs: unknown[]) {
      await addSubscriptions(client, subs)
      touch(client.id)
    },
    async subscriptionsByClient(client: { id: string }) {
      const subs = await subscriptionsByClient(client)
      if (subs.length > 0) touch(client.id) // a session resumed
      return subs
    },
    async cleanSubscriptions(client: Client) {
      forget(client.id) // a clean session ends the stored one
      return cleanSubscriptions(client)
    },
    async outgoingEnqueue(sub: { clientId: string }, packet: Packet) {
      enqueue(sub.clientId, packet)
    },
    async outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet) {
      for (const sub of subs) enqueue(sub.clientId, packet)
    },
    async outgoingUpdate(client: Client, packet: Packet) {
      // as the in-memory persistence: match by broker counter, or take the place of the same message id
      for (const entry of queues.get(client.id) ?? []) {
        const p = entry.packet
        if (p.brokerId === packet.brokerId && p.brokerCounter === packet.brokerCounter) {
          p.messageId = packet.messageId
          return
        }
        if (p.brokerId !== packet.brokerId && p.messageId === packet.messageId) {
          entry.packet = packet
          return
        }
      }
      // not kept (its identity's queue was full, or it expired): it is still sent, only not redelivered later;
      // the in-memory persistence would throw here, and Aedes would drop the connection of a device that is online
    },
    async outgoingClearMessageId(client: Client, packet: Packet) {
      const queue = queues.get(client.id) ?? []
      const at = queue.findIndex((e) => e.packet.messageId === packet.messageId)
      if (at < 0) return undefined
      const [entry] = queue.splice(at, 1)
      count(identityOfSession(client.id), -1)
      if (queue.length === 0) queues.delete(client.id)
      return entry?.packet
    },
    outgoingStream(client: Client) {
      return Readable.from(prune(client.id).map((e) => e.packet))
    },
    destroy(cb?: (err: Error | null | undefined) => void) {
      clearInterval(sweep)
      queues.clear()
      perIdentity.clear()
      sessions.clear()
      connected.clear()
      total = 0
      return destroy(cb)
    },
  })
  return persistence
}
