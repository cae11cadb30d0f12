import { RegistrationError } from '../protocol/errors.js'
import { keepLease, type LeaseKeeper } from '../state/lease-keeper.js'
import { isLease, type SharedState } from '../state/shared-state.js'

/** inProgress refuses a request while another request of the identity is in flight (retry when it is answered). */
export const inProgress = (): RegistrationError =>
  new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')

/**
 * LeaseLost aborts a registration whose lease expired and was taken by another process (this one was paused or
 * cut off past it): the new holder, or the device's retry, answers; this one stays silent.
 */
export class LeaseLost extends Error {
  constructor() {
    super('the in-flight lease was taken by another process')
  }
}

/**
 * InFlight holds at most one registration per identity, in this process (a map) and across processes (a
 * lease in the shared state, renewed while its holder lives). Losing the lease aborts the registration.
 */
export class InFlight {
  readonly #state: SharedState
  readonly #leaseMs: number
  readonly #held = new Map<string, { readonly key: string; readonly controller: AbortController }>()

  constructor(state: SharedState, leaseMs = 10_000) {
    this.#state = state
    this.#leaseMs = leaseMs
  }

  /**
   * hold takes `identity` for the request `key`: undefined when the same request is in flight (that one
   * answers), REGISTRATION_IN_PROGRESS when another is. Its `release` ends the registration here too.
   */
  async hold(identity: string, key: string, controller: AbortController): Promise<LeaseKeeper | undefined> {
    const current = this.#held.get(identity)
    const lease = current ? { heldFor: current.key } : await this.#state.acquire(identity, key, this.#leaseMs)
    if (!isLease(lease)) {
      if (lease.heldFor === key) return undefined
      throw inProgress()
    }
    this.#held.set(identity, { key, controller })
    const keeper = keepLease(this.#state, lease, this.#leaseMs, (cause, taken) =>
      controller.abort(
        taken
          ? new LeaseLost()
          : new RegistrationError('ISSUER_UNAVAILABLE', 'the in-flight lease was lost', { cause }),
      ),
    )
    return {
      held: keeper.held,
      release: async () => {
        this.#held.delete(identity)
        await keeper.release()
      },
    }
  }

  /** abortAll aborts every registration in flight (at shutdown) with `reason`. */
  abortAll(reason: Error): void {
    for (const { controller } of this.#held.values()) controller.abort(reason)
  }
}
