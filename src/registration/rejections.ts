import type { Logger } from 'pino'
import { LogBudget } from '../common/log-budget.js'
import type { RegistrationError } from '../protocol/errors.js'

/**
 * keepRejection says whether a rejection may be kept for a persistent session that is offline: a rejection of
 * a request that can never succeed (non-retryable, except a failed issuance) goes to a connected device only.
 */
export const keepRejection = (error: RegistrationError): boolean =>
  error.retryable || error.code === 'ISSUANCE_FAILED'

/** LOG_BUDGET bounds rejection log lines per identity: 10 at once, then 10 a minute, each with a count. */
const LOG_BUDGET = { burst: 10, perMinute: 10 }

/** RejectionLog logs rejections within each identity's log budget; unexpected failures are always logged. */
export class RejectionLog {
  readonly #budget = new LogBudget(LOG_BUDGET)

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
    const fields = { requestId, code: error.code, ms, err: error.cause ?? error }
    log[unexpected ? 'error' : 'info'](
      suppressed > 0 ? { ...fields, suppressed } : fields,
      'registration rejected',
    )
  }
}
