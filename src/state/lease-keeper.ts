import type { Lease, SharedState } from './shared-state.js'

/** LeaseKeeper holds a lease while its work runs: renewed every third of its lifetime, released at the end. */
export interface LeaseKeeper {
  /**
   * held is true while the lease is known to be this holder's: confirmed by the shared state less than its
   * lifetime ago. A holder that was paused (or cut off) past that may have lost it without knowing yet.
   */
  held(): boolean
  /** release stops renewing and gives the lease up (a failure is harmless: the lease then expires). */
  release(): Promise<void>
}

/**
 * keepLease renews `lease` every `ttlMs / 3`; when a renewal finds the lease lost (it expired and another
 * process took it: `taken`) or cannot reach the state, `onLost` is called once, so the holder stops its work.
 */
export function keepLease(
  state: SharedState,
  lease: Lease,
  ttlMs: number,
  onLost: (err: Error, taken: boolean) => void,
  now: () => number = Date.now,
): LeaseKeeper {
  let lost = false
  let confirmedAt = now()
  const lose = (err: Error, taken: boolean): void => {
    if (lost) return
    lost = true
    onLost(err, taken)
  }
  const timer = setInterval(
    () => {
      const asked = now()
      state.renew(lease, ttlMs).then(
        (renewed) => {
          if (renewed) confirmedAt = Math.max(confirmedAt, asked)
          else lose(new Error('the in-flight lease was lost'), true)
        },
        (err: Error) => lose(err, false),
      )
    },
    Math.max(50, Math.floor(ttlMs / 3)),
  )
  timer.unref()
  return {
    held: () => !lost && now() - confirmedAt < ttlMs,
    async release() {
      clearInterval(timer)
      await state.release(lease).catch(() => {})
    },
  }
}
