import type { Logger } from 'pino'
import { type Config, ConfigError } from '../config/load.js'
import { isGatewayPayload } from '../protocol/gateway.js'
import type { PresentedCredential, RequestConnection } from '../protocol/identity.js'
import type { Registry } from '../registry/registry.js'
import { GatewayService } from './gateway-batch.js'
import { GatewayPolicySource } from './gateway-policy-source.js'
import type { RegistrationObserver } from './observer.js'
import type { RegistrationService } from './service.js'

/** loadGatewayPolicySource validates the gateway policy at start-up (a bad policy stops the bridge); watch later. */
export function loadGatewayPolicySource(config: Config, logger: Logger): GatewayPolicySource {
  try {
    return new GatewayPolicySource(config.gateways.policyFile, logger)
  } catch (err) {
    throw new ConfigError([`gateways.policyFile: ${(err as Error).message}`])
  }
}

/** GatewayWiring is what the bridge needs of the gateway path. */
export interface GatewayWiring {
  readonly service: GatewayService
  /**
   * route hands a request to the gateway path when it uses the extension; false leaves it to protocol v1.
   * `credential` is the certificate the gateway connected with (an operational one must be current).
   */
  route(
    identity: string,
    payload: Buffer,
    credential?: PresentedCredential,
    connection?: RequestConnection,
  ): boolean
}

/** wireGateways builds the gateway path over the registration service. */
export function wireGateways(
  config: Config,
  deps: {
    service: RegistrationService
    registry: Registry
    policy: GatewayPolicySource
    publish: (identity: string, payload: Buffer) => Promise<void>
    logger: Logger
    observer?: RegistrationObserver | undefined
  },
): GatewayWiring {
  const g = config.gateways
  const service = new GatewayService(deps, {
    limits: { maxRequestBytes: g.maxRequestBytes, maxDevicesPerBatch: g.maxDevicesPerBatch },
    concurrency: g.concurrency,
  })
  return {
    service,
    route(identity, payload, credential, connection) {
      if (!isGatewayPayload(payload)) return false
      service.handle(identity, payload, credential, connection)
      return true
    },
  }
}
