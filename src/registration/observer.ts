import type { ErrorCode } from '../protocol/errors.js'

/** IssuanceObserver hears issuance and recording times, for metrics. */
export interface IssuanceObserver {
  issuanceStarted(): void
  issuanceEnded(seconds: number, ok: boolean): void
  auditAppended(seconds: number): void
}

/** Outcome is how a request ended: issued, replayed (an earlier answer), coalesced (a duplicate in flight). */
export type Outcome = 'issued' | 'replayed' | 'coalesced' | 'rejected'

/**
 * RegistrationObserver hears how requests end, for metrics; the service never depends on what it does.
 * `mode` is known once the request decoded.
 */
export interface RegistrationObserver extends IssuanceObserver {
  answered(event: {
    outcome: Outcome
    code?: ErrorCode | undefined
    mode?: 'csr' | 'server_key' | undefined
    seconds: number
    /** How the request came: a device's own (the default) or a gateway's for a downstream device. */
    via?: 'device' | 'gateway' | undefined
  }): void
}
