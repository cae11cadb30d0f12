import type { IssuanceOrder } from '../issuers/issuer.js'
import { RegistrationError } from '../protocol/errors.js'
import type { Registry } from '../registry/registry.js'
import { type DeviceDenial, type GatewayRule, mayRegister } from './gateway-policy.js'

/** GATEWAY_REASONS are the `reason`s of NOT_AUTHORIZED gateway results: stable, documented in docs/protocol.md. */
export const GATEWAY_REASONS = [
  'NOT_A_GATEWAY',
  'DEVICE_NOT_ALLOWED',
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

const MESSAGES: Record<DeviceDenial, string> = {
  DEVICE_NOT_ALLOWED: 'the gateway policy does not name this device for this gateway',
  SERVER_KEY_NOT_ALLOWED: 'the gateway policy does not allow server-side keys for this gateway',
  KEY_ALGORITHM_NOT_ALLOWED: 'the gateway policy does not allow this key algorithm for this gateway',
}

/**
 * GatewayGate decides whether a gateway may register one downstream device now: its policy rule, ownership
 * (a device another gateway owns is refused unless the rule allows transfer) and its quota of devices, counting
 * the new devices of this gateway that are being issued right now.
 */
export class GatewayGate {
  readonly #registry: Registry
  readonly #reserved = new Map<string, number>()

  constructor(registry: Registry) {
    this.#registry = registry
  }

  /** admit throws GatewayDenied, or returns the function that releases the quota reservation when issuance ends. */
  async admit(
    gateway: string,
    rule: GatewayRule,
    order: IssuanceOrder,
    serverKey: boolean,
  ): Promise<() => void> {
    const denial = mayRegister(rule, gateway, order.identity, { serverKey, algorithm: order.keyAlgorithm })
    if (denial) throw new GatewayDenied(denial, MESSAGES[denial])
    const owner = await this.#registry.ownerOf(order.identity)
    if (owner === gateway) return () => {}
    if (owner !== undefined && !rule.transfer) {
      throw new GatewayDenied('OWNED_BY_ANOTHER_GATEWAY', 'another gateway owns this device')
    }
    const owned = await this.#registry.countOwned(gateway)
    const reserved = this.#reserved.get(gateway) ?? 0
    if (owned + reserved >= rule.quota.maxDevices) {
      throw new GatewayDenied(
        'QUOTA_EXCEEDED',
        `the gateway owns its quota of ${rule.quota.maxDevices} devices`,
      )
    }
    this.#reserved.set(gateway, reserved + 1)
    return () => {
      const left = (this.#reserved.get(gateway) ?? 1) - 1
      if (left <= 0) this.#reserved.delete(gateway)
      else this.#reserved.set(gateway, left)
    }
  }
}
