/**
 * The one abortable wait: every delay and every "wait for this, unless aborted" in the bridge goes through here.
 */

/** sleep resolves after `ms`, or rejects with the signal's reason as soon as it aborts (the timer is cleared). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  return untilAborted(elapsed, signal, () => clearTimeout(timer))
}

/**
 * untilAborted settles with `promise`, or rejects with the signal's reason as soon as it aborts. `onAbort` runs
 * on abort (to cancel the underlying work); the abort listener is removed on every path.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) {
    onAbort?.()
    return Promise.reject(signal.reason)
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort?.()
      reject(signal.reason)
    }
    signal.addEventListener('abort', abort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}
