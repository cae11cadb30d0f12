/** Check is what a waiter makes of an object: keep waiting (undefined), a result, or a thrown error. */
export type Check<T, R> = (object: T | undefined) => R | undefined

/** A waiter is offered each new state of its object; it answers true once it has settled. */
type Waiter<T> = (object: T | undefined) => boolean

/** Waiters are the registrations waiting on objects by name; each change of an object is offered to its waiters. */
export class Waiters<T> {
  readonly #byName = new Map<string, Set<Waiter<T>>>()

  /** notify offers the object's new state (undefined: deleted) to its waiters. */
  notify(name: string, object: T | undefined): void {
    for (const waiter of this.#byName.get(name) ?? []) waiter(object)
  }

  /**
   * waitFor resolves with the first non-undefined result of `check` on the named object, starting from its
   * `current` state (it may be ready before anyone waits); it rejects if `check` throws or `signal` aborts.
   */
  waitFor<R>(name: string, current: T | undefined, check: Check<T, R>, signal: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiters = this.#byName.get(name) ?? new Set<Waiter<T>>()
      const finish = (): void => {
        waiters.delete(waiter)
        if (waiters.size === 0) this.#byName.delete(name)
        signal.removeEventListener('abort', onAbort)
      }
      const waiter: Waiter<T> = (object) => {
        try {
          const result = check(object)
          if (result === undefined) return false
          finish()
          resolve(result)
        } catch (err) {
          finish()
          reject(err)
        }
        return true
      }
      const onAbort = (): void => {
        finish()
        reject(signal.reason)
      }
      if (signal.aborted) return reject(signal.reason)
      waiters.add(waiter)
      this.#byName.set(name, waiters)
      if (waiter(current)) return
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}
