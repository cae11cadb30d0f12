import type { Logger } from 'pino'
import type { RateLimitOptions } from '../common/rate-limiter.js'
import { operationalCaFileOf } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import type { LoadedCa } from '../pki/signer.js'
import type { DeviceIdentity } from '../protocol/identity.js'
import { CrlPublisher } from '../registration/crl-publisher.js'
import { DenyListSource } from '../registration/deny-list.js'
import { connectDenial, type LifecycleOptions } from '../registration/lifecycle-policy.js'
import type { Registry } from '../registry/registry.js'

/** LifecycleWiring is what the bridge needs of the certificate lifecycle. */
export interface LifecycleWiring {
  readonly denyList: DenyListSource
  /** Writes the CRL (embedded CA only; undefined with cert-manager, whose CA publishes its own). */
  readonly crl: CrlPublisher | undefined
  readonly options: LifecycleOptions & { renewalRateLimit: RateLimitOptions }
  /** denied says why a connection is refused at CONNECT (connectDenial). */
  denied(identity: DeviceIdentity): string | undefined | Promise<string | undefined>
  close(): void
}

/**
 * wireLifecycle loads the deny list (one that does not load stops the bridge) and, for the embedded CA, sets up
 * the CRL publisher.
 */
export function wireLifecycle(
  config: Config,
  deps: { registry: Registry; issuingCa: () => LoadedCa | undefined; logger: Logger },
): LifecycleWiring {
  const l = config.lifecycle
  let list: DenyListSource
  try {
    list = new DenyListSource(l.denyListFile, deps.logger)
  } catch (err) {
    throw new ConfigError([`lifecycle.denyListFile: ${(err as Error).message}`])
  }
  if (operationalCaFileOf(config) === undefined && l.trustOperationalCa) {
    deps.logger.warn(
      'renewal is off: set lifecycle.operationalCaFile to the CA that signs operational certificates',
    )
  }
  const crl =
    config.issuer.type === 'local-ca'
      ? new CrlPublisher(deps.registry, deps.issuingCa, l.crl, deps.logger)
      : undefined
  return {
    denyList: list,
    crl,
    options: {
      reRegistration: l.reRegistration,
      renewal: l.renewal,
      renewalRateLimit: l.renewal.rateLimit,
      // checked again at every request: a connection opened before the identity was denied gets nothing more
      denied: (cert) => list.denied(cert),
    },
    denied: (identity) => connectDenial((cert) => list.denied(cert), deps.registry, identity),
    close() {
      list.close()
      crl?.close()
    },
  }
}
