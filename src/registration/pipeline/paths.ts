import type { Logger } from 'pino'
import { RegistrationError } from '../../protocol/errors.js'
import type { RateLimit, SharedState } from '../../state/shared-state.js'
import { inProgress } from '../in-flight.js'
import type { Path } from './registration.js'

/** spendToken takes one token of `bucket` (under `limit`, in the shared state), else throws RATE_LIMITED. */
export async function spendToken(state: SharedState, bucket: string, limit: RateLimit, message: string) {
  const retryAfterSeconds = await state.take(bucket, limit)
  if (retryAfterSeconds > 0) throw new RegistrationError('RATE_LIMITED', message, { retryAfterSeconds })
}

/** devicePath: a device's own request (a registration or a renewal), under the identity's rate limit. */
export const devicePath = (state: SharedState, rateLimit: RateLimit): Path => ({
  spend: (identity) => spendToken(state, identity, rateLimit, 'too many requests'),
})

/**
 * awsPath: a device's create call of AWS fleet provisioning: the device path (its rate limit), whose certificate is
 * recorded `pending` until RegisterThing activates it (docs/aws-fleet-provisioning.md).
 */
export const awsPath = (device: Path): Path => ({ ...device, issuedState: 'pending' })

/** DownstreamContext is a gateway's request for one downstream device: its path (vet, the quota rate), batch and log. */
export interface DownstreamContext extends Required<Pick<Path, 'vet' | 'spend'>> {
  readonly registeredBy: string
  readonly requestId: string
  readonly log: Logger
  /** replayed is told when the answer is an earlier one, not a new issuance (for metrics). */
  readonly replayed?: (() => void) | undefined
}

/**
 * gatewayPath: a gateway's request for one downstream device: the gateway policy vets it, the gateway's quota rate
 * limits it, and it always gets a result (the same request in flight elsewhere: REGISTRATION_IN_PROGRESS).
 */
export const gatewayPath = (context: DownstreamContext): Path => ({
  ...context,
  quiet: () => {
    throw inProgress()
  },
})
