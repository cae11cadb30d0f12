import type { Logger } from 'pino'
import { LogBudget } from '../common/log-budget.js'
import type { RegistrationError } from '../protocol/errors.js'

/**
 * keepRejection says whether a rejection may be kept for a persistent session that is offline: a rejection of
 * a request that can never succeed (non-retryable, except a failed issuance) goes to a connected device only.
 */
export const keepRejection = (error: RegistrationError): boolean =>
  error.retryable || error.code === 'ISSUANCE_FAILED'

/**
 * errorFields is what a rejection's log line says of its error. An unexpected error (INTERNAL_ERROR) is logged
 * whole, with its stack: it is a bug to find. Any other rejection is expected and logs no stack: its code, and
 * as `detail` the text of its cause (the driver's or the issuer's own message, which the device never sees).
 */
export function errorFields(error: RegistrationError): { err: unknown } | { detail?: string } {
  if (error.code === 'INTERNAL_ERROR') return { err: error.cause ?? error }
  return error.cause === undefined ? {} : { detail: causeText(error.cause) }
}

/** causeText joins the messages of an error and of its causes, in one line. */
function causeText(cause: unknown): string {
  const parts: string[] = []
  let at = cause
  for (; at instanceof Error && parts.length < 5; at = at.cause) parts.push(at.message)
  if (at !== undefined && !(at instanceof Error)) parts.push(String(at))
  return parts.join(': ')
}

/** RejectionLog logs rejections within each identity's log budget; unexpected failures are always logged. */
export class RejectionLog {
  /** Per identity: 10 lines at once, then 10 a minute, each with the count of those left out. */
  readonly #budget = new LogBudget({ burst: 10, perMinute: 10 })

  /** log writes one "registration rejected" line, or none when the identity's budget is spent. */
  log(
    identity: string,
    error: RegistrationError,
    requestId: string | undefined,
    log: Logger,
    ms?: number,
  ): void {
    const unexpected = error.code === 'INTERNAL_ERROR' || error.code === 'ISSUANCE_FAILED'
    const suppressed = unexpected ? 0 : this.#budget.take(identity)
    if (suppressed === undefined) return
    const fields = { requestId, code: error.code, ms, ...errorFields(error) }
    log[unexpected ? 'error' : 'info'](
      suppressed > 0 ? { ...fields, suppressed } : fields,
      'registration rejected',
    )
  }
}
