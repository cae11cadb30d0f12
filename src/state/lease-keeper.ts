import type { Lease, SharedState } from './shared-state.js'

/** LeaseKeeper holds a lease while its work runs: renewed every third of its lifetime, released at the end. */
export interface LeaseKeeper {
  /** release stops renewing and gives the lease up (a failure is harmless: the lease then expires). */
  release(): Promise<void>
}

/**
 * keepLease renews `lease` every `ttlMs / 3`; when a renewal finds the lease lost (it expired and another
 * process took it) or cannot reach the state, `onLost` is called once, so the holder stops its work.
 */
export function keepLease(
  state: SharedState,
  lease: Lease,
  ttlMs: number,
  onLost: (err: Error) => void,
): LeaseKeeper {
  let lost = false
  const timer = setInterval(
    () => {
      state.renew(lease, ttlMs).then(
        (held) => {
          if (!held && !lost) {
            lost = true
            onLost(new Error('the in-flight lease was lost'))
          }
        },
        (err: Error) => {
          if (!lost) {
            lost = true
            onLost(err)
          }
        },
      )
    },
    Math.max(50, Math.floor(ttlMs / 3)),
  )
  timer.unref()
  return {
    async release() {
      clearInterval(timer)
      await state.release(lease).catch(() => {})
    },
  }
}
