import type { Logger } from 'pino'
import type { IssuanceOrder } from '../../issuers/issuer.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { DeviceRecord } from '../../registry/registry.js'
import type { RateLimit, SharedState } from '../../state/shared-state.js'
import type { Path } from './registration.js'

/** devicePath: a device's own request (a registration or a renewal), under the identity's rate limit. */
export function devicePath(state: SharedState, rateLimit: RateLimit): Path {
  return {
    spend: async (identity) => {
      const retryAfterSeconds = await state.take(identity, rateLimit)
      if (retryAfterSeconds > 0)
        throw new RegistrationError('RATE_LIMITED', 'too many requests', { retryAfterSeconds })
    },
  }
}

/** DownstreamContext is how a gateway's request for one downstream device differs from a device's own. */
export interface DownstreamContext {
  readonly registeredBy: string
  readonly requestId: string
  readonly log: Logger
  /** The gateway policy (Path.vet), with the identity held in flight: whether the gateway takes the device over. */
  readonly vet: (
    order: IssuanceOrder,
    device: DeviceRecord | undefined,
  ) => Promise<{ readonly takeOver: boolean }>
  /** spend takes one of the gateway's quota tokens (a new issuance only), throwing RATE_LIMITED when none is left. */
  readonly spend: () => Promise<void>
  /** replayed is told when the answer is an earlier one, not a new issuance (for metrics). */
  readonly replayed?: (() => void) | undefined
}

/**
 * gatewayPath: a gateway's request for one downstream device: the gateway policy vets it, the gateway's quota rate
 * limits it, and it always gets a result (the same request in flight elsewhere: REGISTRATION_IN_PROGRESS).
 */
export function gatewayPath(context: DownstreamContext): Path {
  return {
    registeredBy: context.registeredBy,
    vet: context.vet,
    spend: () => context.spend(),
    quiet: () => {
      throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'another registration is in flight')
    },
  }
}
