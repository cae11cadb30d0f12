import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { RateLimitOptions } from '../common/rate-limiter.js'
import { operationalCaFileOf } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import type { LoadedCa } from '../pki/signer.js'
import type { DeviceIdentity } from '../protocol/identity.js'
import type { Registry } from '../registry/registry.js'
import { CrlPublisher } from './crl-publisher.js'
import { DenyListSource } from './deny-list.js'
import type { LifecycleOptions } from './lifecycle-policy.js'

/** LifecycleWiring is what the bridge needs of the certificate lifecycle. */
export interface LifecycleWiring {
  readonly denyList: DenyListSource
  /** The operational CA bundle the listener trusts as well ('' when renewal is off). */
  readonly operationalCaPem: string
  /** Writes the CRL (embedded CA only; undefined with cert-manager, whose CA publishes its own). */
  readonly crl: CrlPublisher | undefined
  readonly options: LifecycleOptions & { renewalRateLimit: RateLimitOptions }
  /**
   * denied says why a connection is refused at CONNECT: its identity or certificate is on the deny list, or it
   * presents a revoked operational certificate (looked up in the registry: a promise).
   */
  denied(identity: DeviceIdentity): string | undefined | Promise<string | undefined>
  close(): void
}

/**
 * wireLifecycle loads the deny list and the operational CA bundle (either one that does not load stops the
 * bridge) and, for the embedded CA, sets up the CRL publisher.
 */
export function wireLifecycle(
  config: Config,
  deps: { registry: Registry; issuingCa: () => LoadedCa | undefined; logger: Logger },
): LifecycleWiring {
  const l = config.lifecycle
  const problems: string[] = []
  let denyList: DenyListSource | undefined
  try {
    denyList = new DenyListSource(l.denyListFile, deps.logger)
  } catch (err) {
    problems.push(`lifecycle.denyListFile: ${(err as Error).message}`)
  }
  const caFile = operationalCaFileOf(config)
  let operationalCaPem = ''
  try {
    operationalCaPem = caFile === undefined ? '' : readFileSync(caFile, 'utf8')
  } catch (err) {
    problems.push(
      `lifecycle.operationalCaFile: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code})`,
    )
  }
  if (problems.length > 0 || !denyList) throw new ConfigError(problems)
  if (caFile === undefined && l.trustOperationalCa) {
    deps.logger.warn(
      'renewal is off: set lifecycle.operationalCaFile to the CA that signs operational certificates',
    )
  }
  const crl =
    config.issuer.type === 'local-ca'
      ? new CrlPublisher(deps.registry, deps.issuingCa, l.crl, deps.logger)
      : undefined
  const list = denyList
  return {
    denyList: list,
    operationalCaPem,
    crl,
    options: {
      reRegistration: l.reRegistration,
      renewal: l.renewal,
      renewalRateLimit: l.renewal.rateLimit,
      // checked again at every request: a connection opened before the identity was denied gets nothing more
      denied: (cert) => list.denied(cert),
    },
    denied(identity) {
      const c = identity.credential
      if (!c) return undefined
      // the fields by name: spreading the credential would export its key (a getter), on every CONNECT
      const listed = list.denied({
        identity: identity.id,
        serialNumber: c.serialNumber,
        sha256Fingerprint: c.sha256Fingerprint,
      })
      if (listed !== undefined || c.kind !== 'operational') return listed
      // an operational certificate is the identity it was issued to, whatever else its names say: with
      // identity.source san-dns or san-uri, a certificate issued to one identity can carry names that read as
      // another's, and must never act as that one (connect, subscribe to its replies, send its batches)
      return deps.registry.certificate(c.serialNumber).then((r) => {
        if (!r) return 'the operational certificate is not one this bridge issued'
        if (r.identity !== identity.id) return 'the operational certificate was issued to another identity'
        return r.state === 'revoked' ? 'the operational certificate is revoked' : undefined
      })
    },
    close() {
      list.close()
      crl?.close()
    },
  }
}
