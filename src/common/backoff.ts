/** BackoffOptions shape an exponential backoff: first delay, ceiling, growth factor and jitter fraction. */
export interface BackoffOptions {
  readonly initialMs: number
  readonly maxMs: number
  readonly factor?: number
  /** 0..1: each delay is drawn from [d × (1 − jitter), d]. Default 0.5. */
  readonly jitter?: number
}

/**
 * Backoff is the one retry delay schedule in the bridge: exponential with jitter, capped, and reset by the
 * caller once the operation has stayed healthy (client-go's rule: a success alone is not recovery).
 */
export class Backoff {
  readonly #options: Required<BackoffOptions>
  readonly #random: () => number
  #attempt = 0

  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.#options = { factor: 2, jitter: 0.5, ...options }
    this.#random = random
  }

  /** next returns the delay before the next attempt, or `atLeastMs` (e.g. Retry-After) when that is longer. */
  next(atLeastMs = 0): number {
    const { initialMs, maxMs, factor, jitter } = this.#options
    const ceiling = Math.min(maxMs, initialMs * factor ** this.#attempt)
    this.#attempt++
    const delay = ceiling * (1 - jitter * this.#random())
    return Math.max(Math.round(delay), atLeastMs)
  }

  /** reset starts the schedule over. */
  reset(): void {
    this.#attempt = 0
  }
}
