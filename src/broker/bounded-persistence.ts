import { Readable } from 'node:stream'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import aedesPersistence, { type AedesMemoryPersistence } from 'aedes-persistence'

/** OfflineQueueOptions bound what the broker keeps for persistent sessions (cleanSession=0). */
export interface OfflineQueueOptions {
  /** Messages kept at once for all sessions of one identity; past it new ones are not kept. */
  readonly maxPerIdentity: number
  /** Messages kept at once in all; past it new ones are not kept. */
  readonly maxTotal: number
  /** A kept message is dropped after this long (registration.replyCacheSeconds: a key is never held longer). */
  readonly ttlMs: number
  /** Called when a message is not kept because the identity's queue is full. */
  readonly onOverflow: (identity: string) => void
  /** Called when expired messages are dropped. */
  readonly onExpired?: (count: number) => void
  /**
   * Persistent sessions (stored subscriptions) kept for one identity; past it the one unused longest that is not
   * connected is dropped. Undefined: no bound (tests of the queue alone).
   */
  readonly maxSessionsPerIdentity?: number
  /** A stored session not connected for this long is dropped, with anything still queued for it. */
  readonly sessionExpiryMs?: number
  /** Called when a stored session is dropped: past the bound per identity, or expired. */
  readonly onSessionDropped?: (identity: string, reason: 'limit' | 'expired') => void
  readonly now?: () => number
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

interface Entry {
  packet: Packet
  readonly expiresAt: number
}

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
  const now = options.now ?? Date.now
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
    if (options.ttlMs <= 0 || options.maxPerIdentity <= 0) return // nothing is kept
    const identity = identityOfSession(clientId)
    const full = (): boolean =>
      (perIdentity.get(identity) ?? 0) >= options.maxPerIdentity || total >= options.maxTotal
    if (full()) {
      for (const id of [...queues.keys()]) prune(id)
      if (full()) {
        options.onOverflow(identity)
        return
      }
    }
    const queue = queues.get(clientId) ?? []
    queue.push({ packet: { ...packet }, expiresAt: now() + options.ttlMs })
    queues.set(clientId, queue)
    count(identity, 1)
  }
  const remove = (clientId: string, index: number): Packet | undefined => {
    const queue = queues.get(clientId)
    const [entry] = queue?.splice(index, 1) ?? []
    if (!entry) return undefined
    count(identityOfSession(clientId), -1)
    if (queue?.length === 0) queues.delete(clientId)
    return entry.packet
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
  const drop = (clientId: string, reason: 'limit' | 'expired'): void => {
    forget(clientId)
    const queued = queues.get(clientId)?.length ?? 0
    if (queued > 0) count(identityOfSession(clientId), -queued)
    queues.delete(clientId)
    void cleanSubscriptions({ id: clientId }).catch(() => {})
    void cleanIncoming?.({ id: clientId }).catch(() => {})
    options.onSessionDropped?.(identityOfSession(clientId), reason)
  }
  const touch = (clientId: string): void => {
    if (options.maxSessionsPerIdentity === undefined) return
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
      if (dropped > 0) options.onExpired?.(dropped)
      const before = now() - (options.sessionExpiryMs ?? Number.POSITIVE_INFINITY)
      for (const mine of [...sessions.values()])
        for (const [id, seen] of [...mine]) if (seen <= before && !connected.has(id)) drop(id, 'expired')
    },
    Math.max(1000, Math.min(SWEEP_MS, options.ttlMs, options.sessionExpiryMs ?? SWEEP_MS)),
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
      return at < 0 ? undefined : remove(client.id, at)
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
