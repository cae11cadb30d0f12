import { untilAborted } from '../../common/abortable.js'
import { RegistrationError } from '../../protocol/errors.js'
import { pendingNotice } from './pending.js'
import type { Step } from './registration.js'

/**
 * issue: the issuer makes the certificate (and, in server-key mode, the key), within `issuanceTimeoutMs`; a device
 * that waits long is told `pending` (pending.ts).
 */
export const issue: Step = async (p, r, path) => {
  const { order } = r
  if (!order) throw new Error('issue before authorize')
  const started = performance.now()
  const stopPending = pendingNotice(p, r, path)
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
    stopPending()
    clearTimeout(timeout)
  }
}
