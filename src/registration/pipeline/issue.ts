import { untilAborted } from '../../common/abortable.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { Step } from './registration.js'

/**
 * issue: the issuer makes the certificate (and, in server-key mode, the key), within `issuanceTimeoutMs`. A device
 * that waits longer than `pendingAfterMs` is told `pending`, while this process still holds the lease (a holder
 * paused past it says nothing: another may be answering); a gateway's device is told with the batch.
 */
export const issue: Step = async (p, r, path) => {
  const { order } = r
  if (!order) throw new Error('issue before authorize')
  const started = performance.now()
  const { requestId } = r.request
  const pending = setTimeout(() => {
    if (path.registeredBy !== undefined || !r.lease?.held()) return
    r.notify?.({ status: 'pending', ...(requestId === undefined ? {} : { requestId }) })
  }, p.settings.pendingAfterMs)
  const timeout = setTimeout(
    () => r.controller.abort(new RegistrationError('ISSUANCE_TIMEOUT', 'issuance timed out; retry later')),
    p.settings.issuanceTimeoutMs,
  )
  p.observer?.issuanceStarted()
  let ok = false
  try {
    r.credentials = await untilAborted(p.issuer.issue(order, r.controller.signal), r.controller.signal)
    ok = true
  } finally {
    p.observer?.issuanceEnded((performance.now() - started) / 1000, ok)
    clearTimeout(pending)
    clearTimeout(timeout)
  }
}
