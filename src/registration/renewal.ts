import type { IssuanceOrder } from '../issuers/issuer.js'
import type { DeviceRecord } from '../registry/registry.js'
import type { IssuanceEvent } from './audit-log.js'
import {
  checkRenewal,
  checkReRegistration,
  type LifecycleOptions,
  type RenewedCertificate,
  recordedIssuance,
} from './lifecycle-policy.js'

/** LifecycleStep is what the lifecycle decided for one issuance: its audit event and what it supersedes. */
export interface LifecycleStep {
  readonly event: IssuanceEvent
  readonly supersedes?: string | undefined
}

/**
 * LifecycleGate is the lifecycle step of the registration pipeline: it applies the renewal and re-registration
 * policies (the renewal step found the certificate renewed; the rateLimit step spent the renewal's token).
 */
export class LifecycleGate {
  readonly #options: LifecycleOptions
  readonly #retryWindowMs: number

  /** `retryWindowMs` is how long after an issuance a retry of its request is still that request's retry. */
  constructor(options: LifecycleOptions, retryWindowMs: number) {
    this.#options = options
    this.#retryWindowMs = retryWindowMs
  }

  /**
   * decide applies the policy to an authorized order: a renewal (checkRenewal) supersedes the
   * certificate connected with; a registration passes the re-registration policy (a gateway renews the devices it
   * owns, or takes one over where its policy says so). `key` is the request hash, whose earlier issuance (the
   * registry's record of it within the retry window) makes it a retry; `device` is the identity's registry
   * record with its newest certificate (read once per request).
   */
  decide(
    order: IssuanceOrder,
    context: {
      key: string
      device: DeviceRecord | undefined
      renewing?: RenewedCertificate | undefined
      registeredBy?: string | undefined
      /** The gateway policy let this gateway take the device over (transfer, adopt). */
      takeOver?: boolean | undefined
    },
  ): LifecycleStep {
    const { renewing, registeredBy, takeOver, device } = context
    const retryOf = recordedIssuance(device, context.key, this.#retryWindowMs)?.serialNumber
    if (renewing) {
      const supersedes = checkRenewal(device, renewing, order, this.#options.renewal, retryOf)
      return { event: 'renewed', supersedes }
    }
    const known = checkReRegistration(device, this.#options.reRegistration, {
      retryOf,
      registeredBy,
      takeOver,
    })
    if (!known) return { event: 'registered', supersedes: retryOf }
    return { event: registeredBy === undefined ? 're-registered' : 'renewed', supersedes: retryOf }
  }
}
