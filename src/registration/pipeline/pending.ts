import type { Path, Pipeline, Registration } from './registration.js'

/**
 * pendingNotice tells a device that waits longer than `pendingAfterMs` that its request is being worked on
 * (`pending`), once per request, while this process still holds the lease (a holder paused past it says nothing:
 * another may be answering); a gateway's device is told with the batch. It returns the function that stops it.
 * The steps that may wait long use it: `hook` and `issue`.
 */
export function pendingNotice(p: Pipeline, r: Registration, path: Path): () => void {
  if (r.pendingSent) return () => {}
  const { requestId } = r.request
  const timer = setTimeout(() => {
    if (path.registeredBy !== undefined || !r.lease?.held()) return
    r.pendingSent = true
    r.notify?.({ status: 'pending', ...(requestId === undefined ? {} : { requestId }) })
  }, p.settings.pendingAfterMs)
  return () => clearTimeout(timer)
}
