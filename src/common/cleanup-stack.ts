/**
 * CleanupStack holds the closing step of everything opened so far, newest on top. Start-up pushes a step as it
 * opens each resource; if a later step fails, unwind closes what was opened, newest first, so a failed start
 * leaves nothing open (no Redis or PostgreSQL connection, no watcher, no listener). A running service unwinds
 * the same stack when it stops. Every step runs even when an earlier one fails; the first failure is rethrown
 * once all have run.
 */
export class CleanupStack {
  readonly #steps: (() => unknown)[] = []

  /** defer adds a closing step; it runs before every step added earlier. */
  defer(step: () => unknown): void {
    this.#steps.push(step)
  }

  /** unwind runs (and forgets) every step, newest first. */
  async unwind(): Promise<void> {
    let failure: { err: unknown } | undefined
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step()
      } catch (err) {
        failure ??= { err }
      }
    }
    if (failure) throw failure.err
  }
}
