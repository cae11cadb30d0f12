import type { ErrorCode } from '../protocol/errors.js'

/** Outcome is how a request ended: issued, replayed (an earlier answer), coalesced (a duplicate in flight). */
export type Outcome = 'issued' | 'replayed' | 'coalesced' | 'rejected'

/** RegistrationObserver hears how requests end and how long issuing and recording take: for metrics, never a decision. */
export interface RegistrationObserver {
  issuanceStarted(): void
  issuanceEnded(seconds: number, ok: boolean): void
  auditAppended(seconds: number): void
  answered(event: {
    outcome: Outcome
    code?: ErrorCode | undefined
    /** Known once the request decoded. */
    mode?: 'csr' | 'server_key' | undefined
    seconds: number
    /**
     * How the request came: a device's own (the default), a gateway's for a downstream device, or an AWS
     * fleet-provisioning create call.
     */
    via?: 'device' | 'gateway' | 'aws' | undefined
  }): void
  /** How an AWS fleet-provisioning RegisterThing ended. */
  registerThing?(outcome: 'activated' | 'replayed' | 'rejected'): void
}
