import type { IssuanceOrder } from '../issuers/issuer.js'
import { RegistrationError } from '../protocol/errors.js'
import type { DeviceRejection } from '../protocol/gateway.js'
import type { PresentedCredential } from '../protocol/identity.js'
import { type RejectedReply, rejectedReply } from '../protocol/messages.js'
import type { DeviceRecord, Registry } from '../registry/registry.js'
import {
  DEVICE_DENIALS,
  type DeviceDenial,
  type GatewayPolicy,
  type GatewayRule,
  mayRegister,
  ruleFor,
} from './gateway-policy.js'
import { checkRevokedCredential, denialOf, type LifecycleOptions } from './lifecycle-policy.js'

/** GATEWAY_REASONS are the `reason`s of NOT_AUTHORIZED gateway results: stable, documented in docs/protocol.md. */
export const GATEWAY_REASONS = [
  'NOT_A_GATEWAY',
  'DEVICE_NOT_ALLOWED',
  'DEVICE_IS_A_GATEWAY',
  'DEVICE_REGISTERS_ITSELF',
  'SERVER_KEY_NOT_ALLOWED',
  'KEY_ALGORITHM_NOT_ALLOWED',
  'OWNED_BY_ANOTHER_GATEWAY',
  'QUOTA_EXCEEDED',
  'DENY_LISTED',
] as const

/** GatewayReason is the `reason` of a NOT_AUTHORIZED gateway result. */
export type GatewayReason = (typeof GATEWAY_REASONS)[number]

// every policy denial is a documented reason
const _denialsAreReasons: readonly GatewayReason[] = [] as DeviceDenial[]

/** GatewayDenied is NOT_AUTHORIZED with the policy reason, sent as `error.reason`. */
export class GatewayDenied extends RegistrationError {
  readonly reason: GatewayReason

  constructor(reason: GatewayReason, message: string) {
    super('NOT_AUTHORIZED', message)
    this.reason = reason
  }
}

/** refuseDenied throws NOT_AUTHORIZED (reason DENY_LISTED) for an identity or certificate the deny list names. */
export function refuseDenied(
  denied: LifecycleOptions['denied'],
  identity: string,
  credential: PresentedCredential | undefined,
): void {
  const reason = denialOf(denied, identity, credential)
  if (reason !== undefined) throw new GatewayDenied('DENY_LISTED', reason)
}

/** reasonOf is the gateway policy's reason for a refusal (`error.reason` on the wire), if it has one. */
export const reasonOf = (error: RegistrationError): GatewayReason | undefined =>
  error instanceof GatewayDenied ? error.reason : undefined

/** gatewayRejection is a rejection as a gateway reply carries it: no requestId of its own, with the reason. */
export function gatewayRejection(
  error: RegistrationError,
): Omit<RejectedReply, 'requestId' | 'error'> & { readonly error: DeviceRejection } {
  const { requestId: _, ...reply } = rejectedReply(error, undefined)
  const reason = reasonOf(error)
  return reason === undefined ? reply : { ...reply, error: { ...reply.error, reason } }
}

/**
 * checkSender says who may send a batch, and returns its rule: an identity the policy makes a gateway, that no
 * other gateway registered (it would be that gateway's device: its credentials came through the other gateway,
 * which may hold its key), connected with its current certificate (active, as for renewal), not on the deny list.
 */
export async function checkSender(
  policy: GatewayPolicy,
  registry: Registry,
  denied: LifecycleOptions['denied'],
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
  if (credential?.kind === 'operational') {
    const current = await checkRevokedCredential(registry, credential, gateway)
    if (current.state !== 'active') {
      const message = 'this certificate has been superseded; connect with the newest certificate'
      throw new RegistrationError('NOT_AUTHORIZED', message)
    }
  }
  refuseDenied(denied, gateway, credential)
  return rule
}

/** Admission is a gateway's leave to register one device: whether it takes the device over, and the quota release. */
export interface Admission {
  /** The device is taken from another gateway (`transfer`) or from itself (`adopt`): the policy said so. */
  readonly takeOver: boolean
  /** release frees the quota reservation when the issuance ends. */
  readonly release: () => void
}

/**
 * admitDevice (the gateway path's vet step) lets a gateway register one downstream device now, or throws
 * GatewayDenied: the policy, who holds the device (another gateway: `transfer`; itself, with its factory
 * certificate: `adopt`), the quota of devices (those it owns in the registry, and its new ones being issued now in
 * this process: `reserved`, until the admission is released).
 */
export async function admitDevice(
  deps: { readonly policy: { readonly current: GatewayPolicy }; readonly registry: Registry },
  reserved: Map<string, number>,
  request: {
    gateway: string
    rule: GatewayRule
    order: IssuanceOrder
    device: DeviceRecord | undefined
    serverKey: boolean
  },
): Promise<Admission> {
  const { gateway, rule, order, device, serverKey } = request
  const algorithm = order.keyAlgorithm
  const denial = mayRegister(deps.policy.current, rule, gateway, order.identity, {
    serverKey,
    algorithm,
  })
  if (denial) throw new GatewayDenied(denial, DEVICE_DENIALS[denial])
  // the owner is the gateway that registered the device last, kept through the device's own renewals; a known
  // device without one registered itself with its factory certificate, and a gateway needs `adopt` for it
  const owner = device?.owner
  if (device !== undefined && owner === undefined && !rule.adopt) {
    throw new GatewayDenied(
      'DEVICE_REGISTERS_ITSELF',
      'this device registered itself with its factory certificate; the gateway policy does not let this gateway adopt it',
    )
  }
  if (owner === gateway) return { takeOver: false, release: () => {} }
  if (owner !== undefined && !rule.transfer) {
    throw new GatewayDenied('OWNED_BY_ANOTHER_GATEWAY', 'another gateway owns this device')
  }
  const owned = await deps.registry.countOwned(gateway)
  const inFlight = reserved.get(gateway) ?? 0
  if (owned + inFlight >= rule.quota.maxDevices) {
    throw new GatewayDenied(
      'QUOTA_EXCEEDED',
      `the gateway owns its quota of ${rule.quota.maxDevices} devices`,
    )
  }
  reserved.set(gateway, inFlight + 1)
  const release = (): void => {
    const left = (reserved.get(gateway) ?? 1) - 1
    if (left <= 0) reserved.delete(gateway)
    else reserved.set(gateway, left)
  }
  return { takeOver: device !== undefined, release }
}
