import type { Logger } from 'pino'
import type { Reply } from '../protocol/messages.js'
import type { Answer } from './service.js'

/** Publish sends a reply on the identity's reply topic (the broker's publish). */
export type Publish = (identity: string, reply: Reply, queue: boolean) => Promise<void>

/**
 * Deliveries is the wiring between the service and the broker: it publishes the service's answers and keeps
 * track of those under way, so that a stop can wait for them.
 */
export class Deliveries {
  readonly #pending = new Set<Promise<void>>()
  readonly #publish: Publish
  readonly #logger: Logger

  constructor(publish: Publish, logger: Logger) {
    this.#publish = publish
    this.#logger = logger
  }

  /** track delivers the answer to `identity` once the service has it. */
  track(identity: string, answer: Promise<Answer | undefined>): void {
    const delivery = answer
      .then((a) => (a ? this.#publish(identity, a.reply, a.queue) : undefined))
      .catch((err: unknown) => this.#logger.warn({ identity, err }, 'reply could not be published'))
      .finally(() => this.#pending.delete(delivery))
    this.#pending.add(delivery)
  }

  /** settled resolves when every delivery under way has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending])
  }
}
