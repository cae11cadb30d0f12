import type { Client, Subscription } from 'aedes'

/** Granted is access control's answer for one filter: the subscription as granted (QoS as granted), or null. */
export type Granted = (client: Client, sub: Subscription) => Subscription | null

type AddSubscriptions = (client: Client, subs: Subscription[]) => Promise<unknown>

/**
 * storeGrantedSubscriptions makes a persistence keep, for a persistent session, only the filters access control
 * grants, and store each SUBSCRIBE once and one at a time per client. Both are about how Aedes 1.2 calls
 * addSubscriptions (lib/handlers/subscribe.js, storeSubscriptions): once per granted filter of a SUBSCRIBE,
 * concurrently, and each time with the packet's whole list of filters, refused ones included.
 *
 * - Refused filters: stored, they would route messages of topics the device may not read into its session's
 *   queue (Aedes enqueues for every stored filter), where they take its quota of queued replies.
 * - Once, one at a time: aedes-persistence-redis 11.2 (asyncPersistence.js addSubscriptions) waits for its
 *   own `$SYS/sub/add` broadcast, keyed by client id and first filter of the list
 *   (aedes-persistence/broadcastPersistence.js #waitFor: a Map, so a second waiter under the same key replaces
 *   the first). Two stores in flight for one client and the same first filter — a SUBSCRIBE of two reply topics,
 *   or the same SUBSCRIBE sent twice — left one never resolved: no SUBACK, and no subscription.
 */
export function storeGrantedSubscriptions(persistence: object, granted: Granted): void {
  const target = persistence as { addSubscriptions: AddSubscriptions }
  const add = target.addSubscriptions.bind(persistence)
  // one store per SUBSCRIBE: Aedes passes the same array (packet.subscriptions) for each filter of a packet
  const stores = new WeakMap<Subscription[], Promise<unknown>>()
  // the store last started per client id; the next one for that client waits for it
  const tails = new Map<string, Promise<unknown>>()

  const store = (client: Client, subs: Subscription[]): Promise<unknown> => {
    const keep = subs.flatMap((sub) => granted(client, sub) ?? [])
    if (keep.length === 0) return Promise.resolve()
    const before = tails.get(client.id) ?? Promise.resolve()
    const stored = before.catch(() => {}).then(() => add(client, keep))
    const tail = stored.catch(() => {})
    tails.set(client.id, tail)
    void tail.then(() => {
      if (tails.get(client.id) === tail) tails.delete(client.id)
    })
    return stored
  }

  target.addSubscriptions = (client, subs) => {
    const pending = stores.get(subs) ?? store(client, subs)
    stores.set(subs, pending)
    return pending
  }
}
