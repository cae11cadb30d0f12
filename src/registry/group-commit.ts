/** GroupCommitSteps are how a store commits: many items in one transaction, one alone, and the sync to disk. */
export interface GroupCommitSteps<T> {
  /** commitAll commits every item in one transaction, or throws having committed none. */
  readonly commitAll: (items: readonly T[]) => void
  readonly commitOne: (item: T) => void
  /** sync makes what was committed durable, off the main thread (e.g. fdatasync of a write-ahead log). */
  readonly sync: () => Promise<void>
}

/**
 * GroupCommit commits the items added in one turn of the event loop together, then syncs once: under load one
 * transaction and one fsync serve many records, and the fsync never blocks the event loop. An add resolves only
 * once its item is durable; one bad item (an error, a failed precondition) fails alone: the batch is then
 * committed one by one, still synced once.
 */
export class GroupCommit<T> {
  readonly #steps: GroupCommitSteps<T>
  #queue: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = []
  readonly #syncing = new Set<Promise<void>>()
  #syncs = 0

  constructor(steps: GroupCommitSteps<T>) {
    this.#steps = steps
  }

  /** syncs counts the syncs performed (one per batch that committed anything). */
  get syncs(): number {
    return this.#syncs
  }

  /** add queues an item; it resolves once the item is committed and synced. */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      if (this.#queue.length === 1) setImmediate(() => this.#commit())
    })
  }

  #commit(): void {
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    let committed = batch
    try {
      this.#steps.commitAll(batch.map((p) => p.item))
    } catch {
      // one bad item must not fail the others: commit them one by one
      committed = batch.filter((p) => {
        try {
          this.#steps.commitOne(p.item)
          return true
        } catch (err) {
          p.reject(err)
          return false
        }
      })
    }
    if (committed.length === 0) return // nothing to make durable
    const synced = this.#steps.sync().then(
      () => {
        this.#syncs++
        for (const p of committed) p.resolve()
      },
      (err: unknown) => {
        for (const p of committed) p.reject(err)
      },
    )
    this.#syncing.add(synced)
    synced.finally(() => this.#syncing.delete(synced))
  }

  /** drain commits what is queued and waits for every sync under way. */
  async drain(): Promise<void> {
    this.#commit()
    await Promise.all([...this.#syncing])
  }
}
