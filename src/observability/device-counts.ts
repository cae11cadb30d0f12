import type { ExpiryState } from '../registry/registry.js'

/** Counts are identities by the state of their newest certificate. */
export type Counts = Readonly<Record<ExpiryState, number>>

/** DeviceCountsOptions say how to count and how often. */
export interface DeviceCountsOptions {
  /** count runs the one aggregate query (Registry.expiryCounts). */
  readonly count: () => Promise<Counts>
  /** Counted again at least this often: other replicas' issuances, `revoke` from the CLI, time passing. */
  readonly intervalMs: number
  /** After a change, counted again no sooner than this after the last count started... */
  readonly minSpacingMs: number
  /** ...nor sooner than this many times the last count's duration (a registry that is slow to count is counted less). */
  readonly spacingFactor: number
  /** A failed count: the last counts stay. */
  readonly onError: (err: unknown) => void
}

/**
 * DeviceCounts keeps the devices-by-state counts current for /metrics, so that a scrape never reads the registry:
 * it counts at start, every `intervalMs`, and soon after a change in this process (`changed`), never more than one
 * count at a time and with changes coalesced, so a burst of issuances costs one count.
 */
export class DeviceCounts {
  readonly #options: DeviceCountsOptions
  #counts: Counts | undefined
  #first: Promise<void> | undefined
  #running: Promise<void> | undefined
  #again = false
  #soon: NodeJS.Timeout | undefined
  #interval: NodeJS.Timeout | undefined
  #lastStart = Number.NEGATIVE_INFINITY
  #lastMs = 0
  #closed = false

  constructor(options: DeviceCountsOptions) {
    this.#options = options
  }

  /** start counts for the first time and then every intervalMs. */
  start(): void {
    this.#first = this.#refresh()
    this.#interval = setInterval(() => void this.#refresh(), this.#options.intervalMs)
    this.#interval.unref()
  }

  /** current is the last counts (after the first count has finished); undefined until one has succeeded. */
  async current(): Promise<Counts | undefined> {
    await this.#first
    return this.#counts
  }

  /** changed says the registry changed here (an issuance): count again soon, once for any number of changes. */
  changed(): void {
    if (this.#closed || this.#soon !== undefined) return
    if (this.#running) {
      this.#again = true
      return
    }
    const spacing = Math.max(this.#options.minSpacingMs, this.#options.spacingFactor * this.#lastMs)
    const delay = Math.max(0, this.#lastStart + spacing - performance.now())
    this.#soon = setTimeout(() => {
      this.#soon = undefined
      void this.#refresh()
    }, delay)
    this.#soon.unref()
  }

  /** close stops counting and waits for a count in progress. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#interval)
    clearTimeout(this.#soon)
    await this.#running
  }

  #refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    const started = performance.now()
    this.#lastStart = started
    this.#running = this.#options
      .count()
      .then(
        (counts) => {
          this.#counts = counts
        },
        (err: unknown) => this.#options.onError(err),
      )
      .finally(() => {
        this.#lastMs = performance.now() - started
        this.#running = undefined
        if (this.#again) {
          this.#again = false
          this.changed()
        }
      })
    return this.#running
  }
}
