import { RateLimiter, type RateLimitOptions } from '../common/rate-limiter.js'
import type { IssuanceOrder } from '../issuers/issuer.js'
import { RegistrationError } from '../protocol/errors.js'
import type { PresentedCredential } from '../protocol/identity.js'
import type { DeviceRecord, Registry } from '../registry/registry.js'
import type { IssuanceEvent } from './audit-log.js'
import {
  checkRenewal,
  checkReRegistration,
  checkRevokedCredential,
  type LifecycleOptions,
  recordedIssuance,
} from './lifecycle-policy.js'

/** LifecycleStep is what the lifecycle decided for one issuance: its audit event and what it supersedes. */
export interface LifecycleStep {
  readonly event: IssuanceEvent
  readonly supersedes?: string | undefined
}

/**
 * LifecycleGate is the renewal and re-registration step of the registration service: it tells renewals (an
 * operational certificate) from registrations, refuses revoked certificates, rate-limits renewals with their own
 * token bucket, and applies the renewal and re-registration policies.
 */
export class LifecycleGate {
  readonly #registry: Registry | undefined
  readonly #options: LifecycleOptions
  readonly #renewals: RateLimiter
  readonly #retryWindowMs: number

  /** `retryWindowMs` is how long after an issuance a retry of its request is still that request's retry. */
  constructor(
    registry: Registry | undefined,
    options: LifecycleOptions & { renewalRateLimit: RateLimitOptions },
    retryWindowMs: number,
  ) {
    this.#registry = registry
    this.#options = options
    this.#renewals = new RateLimiter(options.renewalRateLimit)
    this.#retryWindowMs = retryWindowMs
  }

  /**
   * renewal returns the credential when the connection renews (an operational certificate), after refusing a
   * revoked one: a revoked certificate gets nothing, not even a replay of an answer given before.
   */
  async renewal(
    identity: string,
    credential: PresentedCredential | undefined,
  ): Promise<PresentedCredential | undefined> {
    if (credential?.kind !== 'operational') return undefined
    await checkRevokedCredential(this.#registry, credential, identity)
    return credential
  }

  /**
   * decide applies the policy to an authorized order: a renewal (rate limit, then checkRenewal) supersedes the
   * certificate connected with; a registration passes the re-registration policy (a gateway renews the devices it
   * owns, or takes one over where its policy says so). `key` is the request hash, whose earlier issuance (the
   * registry's record of it within the retry window) makes it a retry; `device` is the identity's registry
   * record with its newest certificate (read once per request).
   */
  async decide(
    order: IssuanceOrder,
    context: {
      key: string
      device: DeviceRecord | undefined
      renewing?: PresentedCredential | undefined
      registeredBy?: string | undefined
      /** The gateway policy let this gateway take the device over (transfer, adopt). */
      takeOver?: boolean | undefined
    },
  ): Promise<LifecycleStep> {
    const { renewing, registeredBy, takeOver, device } = context
    const retryOf = recordedIssuance(device, context.key, this.#retryWindowMs)?.serialNumber
    if (renewing) {
      const wait = this.#renewals.take(order.identity)
      if (wait > 0)
        throw new RegistrationError('RATE_LIMITED', 'too many renewals', { retryAfterSeconds: wait })
      const renewal = this.#options.renewal
      const supersedes = await checkRenewal(this.#registry, device, renewing, order, renewal, retryOf)
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
