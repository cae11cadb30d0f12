import type { Logger } from 'pino'
import { operationalCaFileOf } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import type { LoadedCa } from '../pki/signer.js'
import type { DeviceIdentity } from '../protocol/identity.js'
import { CrlPublisher } from '../registration/crl-publisher.js'
import { DenyListSource, type PresentedCertificate } from '../registration/deny-list.js'
import { connectDenial } from '../registration/lifecycle-policy.js'
import type { Registry } from '../registry/registry.js'

/**
 * wireLifecycle loads the deny list (one that does not load stops the bridge) and, for the embedded CA, sets up
 * the CRL publisher (cert-manager's CA publishes its own). `options` are the service's lifecycle settings,
 * `denied` the broker's check at CONNECT.
 */
export function wireLifecycle(
  config: Config,
  deps: { registry: Registry; issuingCa: () => LoadedCa | undefined; logger: Logger },
) {
  const l = config.lifecycle
  const denied = (cert: PresentedCertificate): string | undefined => list.denied(cert)
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
      ? new CrlPublisher(
          deps.registry,
          deps.issuingCa,
          { ...l.crl, pendingLifetimeMs: config.aws.tokenLifetimeSeconds * 1000 },
          deps.logger,
        )
      : undefined
  return {
    denyList: list,
    crl,
    options: {
      reRegistration: l.reRegistration,
      renewal: l.renewal,
      renewalRateLimit: l.renewal.rateLimit,
      // checked again at every request: a connection opened before the identity was denied gets nothing more
      denied,
    },
    denied: (identity: DeviceIdentity) => connectDenial(denied, deps.registry, identity),
    close() {
      list.close()
      crl?.close()
    },
  }
}
