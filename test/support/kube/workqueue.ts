/**
 * WorkQueue is a controller's work queue as client-go's: keys, not events; a key is processed by one worker
 * at a time, a key added while it is processed runs once more afterwards (however often it was added), and a
 * reconcile that throws is retried after an exponential backoff (5 ms doubling, at most `maxBackoffMs`), as
 * the default controller rate limiter does. Each reconcile reads the current state (the informer cache), so
 * the key is all it needs.
 */
export class WorkQueue {
  readonly #processing = new Set<string>()
  readonly #dirty = new Map<string, () => Promise<void>>()
  readonly #failures = new Map<string, number>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #stopped = false

  constructor(readonly maxBackoffMs = 1000) {}

  /** add queues `reconcile` under `key`: at once, or after the reconcile of that key in progress. */
  add(key: string, reconcile: () => Promise<void>): void {
    if (this.#stopped) return
    if (this.#processing.has(key)) {
      this.#dirty.set(key, reconcile)
      return
    }
    this.#processing.add(key)
    // never inside the store's event emission that queued it
    queueMicrotask(() => this.#run(key, reconcile))
  }

  async #run(key: string, reconcile: () => Promise<void>): Promise<void> {
    try {
      await reconcile()
      this.#failures.delete(key)
    } catch {
      // a conflict or a vanished object: requeued with backoff, as controllers do
      const failures = (this.#failures.get(key) ?? 0) + 1
      this.#failures.set(key, failures)
      this.after(Math.min(this.maxBackoffMs, 5 * 2 ** (failures - 1)), () => this.add(key, reconcile))
    }
    this.#processing.delete(key)
    const again = this.#dirty.get(key)
    if (again) {
      this.#dirty.delete(key)
      this.add(key, again)
    }
  }

  /** after runs `task` in `ms` unless the queue is stopped first. */
  after(ms: number, task: () => void): void {
    if (this.#stopped) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      if (!this.#stopped) task()
    }, ms)
    this.#timers.add(timer)
  }

  /** delay resolves in `ms`; never, once the queue is stopped (what waited on it is abandoned). */
  delay(ms: number): Promise<void> {
    return new Promise((resolve) => (ms > 0 ? this.after(ms, resolve) : resolve()))
  }

  get stopped(): boolean {
    return this.#stopped
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }
}
