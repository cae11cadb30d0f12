import type { RegistrationError } from '../protocol/errors.js'
import type { DeviceRejection } from '../protocol/gateway.js'
import type { PresentedCredential } from '../protocol/identity.js'
import { type RejectedReply, rejectedReply } from '../protocol/messages.js'
import type { Registry } from '../registry/registry.js'
import { GatewayDenied } from './gateway-gate.js'
import { type GatewayPolicy, type GatewayRule, ruleFor } from './gateway-policy.js'
import { checkCurrentCredential } from './lifecycle-policy.js'

/**
 * checkSender says who may send a batch, and returns its rule: an identity the policy makes a gateway, that no
 * other gateway registered (it would be that gateway's device: its credentials came through the other gateway,
 * which may hold its key), connected with its current certificate (as for renewal), and not on the deny list.
 */
export async function checkSender(
  policy: GatewayPolicy,
  registry: Registry,
  checkDenied: (identity: string, credential?: PresentedCredential) => void,
  gateway: string,
  credential: PresentedCredential | undefined,
): Promise<GatewayRule> {
  const rule = ruleFor(policy, gateway)
  if (!rule)
    throw new GatewayDenied(
      'NOT_A_GATEWAY',
      'this identity is not a gateway; the gateway extension is refused',
    )
  const owner = await registry.ownerOf(gateway)
  if (owner !== undefined) {
    throw new GatewayDenied(
      'NOT_A_GATEWAY',
      `gateway ${owner} registered this identity as its device; a gateway registers itself with its own factory certificate`,
    )
  }
  await checkCurrentCredential(registry, credential, gateway)
  checkDenied(gateway, credential)
  return rule
}

/** reasonOf is the gateway policy's reason for a refusal (`error.reason` on the wire), if it has one. */
export function reasonOf(error: RegistrationError): string | undefined {
  return error instanceof GatewayDenied ? error.reason : undefined
}

/** gatewayRejection is a rejection as a gateway reply carries it: no requestId of its own, with the reason. */
export function gatewayRejection(
  error: RegistrationError,
): Omit<RejectedReply, 'requestId' | 'error'> & { readonly error: DeviceRejection } {
  const { requestId: _, ...reply } = rejectedReply(error, undefined)
  const reason = reasonOf(error)
  return reason === undefined ? reply : { ...reply, error: { ...reply.error, reason } }
}
