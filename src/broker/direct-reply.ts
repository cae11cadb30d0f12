import type { AedesPublishPacket, Client } from 'aedes'
import type { DirectReply } from '../protocol/aws/direct-reply.js'

/**
 * DirectReplies writes AWS fleet-provisioning answers to one connection (protocol/aws/direct-reply.ts). The write
 * is Aedes' per-client publish at QoS 0: never stored in the session (a key must not reach persistence, nor Redis),
 * and it passes authorizeForward only while this very write is under way (`forwards`).
 */
export class DirectReplies {
  readonly #sending = new WeakMap<Client, string>()

  /** of is the DirectReply of a client's connection. */
  of(client: Client): DirectReply {
    return {
      get open() {
        return !client.closed
      },
      send: (topic, payload) => this.#send(client, topic, payload),
    }
  }

  /** forwards tells authorizeForward that this packet is the direct reply being written to this client. */
  forwards(client: Client, packet: AedesPublishPacket): boolean {
    return this.#sending.get(client) === packet.topic
  }

  #send(client: Client, topic: string, payload: Buffer): Promise<boolean> {
    const subscriptions = (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions
    if (client.closed || !Object.hasOwn(subscriptions, topic)) return Promise.resolve(false)
    return new Promise((resolve) => {
      const packet = { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as const
      // authorizeForward runs synchronously inside publish (Aedes' deliver0): the mark covers this write only
      this.#sending.set(client, topic)
      try {
        client.publish(packet, () => resolve(!client.closed))
      } finally {
        this.#sending.delete(client)
      }
    })
  }
}
