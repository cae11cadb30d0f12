import type { Logger } from 'pino'
import { replaceFile } from '../common/replace-file.js'
import type { Config } from '../config/load.js'
import { buildCrl } from '../pki/crl.js'
import { toPem } from '../pki/pem.js'
import type { LoadedCa } from '../pki/signer.js'
import { REVOCATION_REASONS, type Registry } from '../registry/registry.js'

/** CrlSettings say where the CRL goes (mosquitto's `crlfile` points there) and how long each one is valid. */
type CrlSettings = Config['lifecycle']['crl']

/**
 * writeCrl builds the CRL of every revoked certificate in the registry, signed by the issuing CA, and writes it
 * (PEM) to the configured file. The CRL number is the time in milliseconds, so that it grows across the bridge
 * and the CLI, which both write it. Returns the DER.
 */
export async function writeCrl(
  registry: Registry,
  ca: LoadedCa,
  settings: CrlSettings,
  now = new Date(),
): Promise<Buffer> {
  const revoked = await registry.revoked()
  const der = buildCrl(
    ca.signer,
    revoked.map((r) => ({
      serialNumber: r.serialNumber,
      revokedAt: r.revokedAt ?? now,
      reasonCode: REVOCATION_REASONS[r.revocationReason ?? 'unspecified'],
    })),
    {
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + settings.validityHours * 3_600_000),
      crlNumber: BigInt(now.getTime()),
    },
  )
  // workers, replicas and the CLI sharing a state dir write this file concurrently: each with its own temp file
  await replaceFile(settings.file, toPem(der, 'X509 CRL'), 0o644)
  return der
}

/**
 * CrlPublisher keeps the CRL file fresh in the running bridge: it writes one at start and again every half
 * validity, well before nextUpdate, so a production broker never holds a stale CRL. `revoke` (the CLI) writes
 * one at once on every revocation.
 */
export class CrlPublisher {
  readonly #timer: NodeJS.Timeout
  /** publish writes the CRL now (a failure is logged). */
  readonly publish: () => Promise<void>

  constructor(registry: Registry, ca: () => LoadedCa | undefined, settings: CrlSettings, logger: Logger) {
    this.publish = async () => {
      const current = ca()
      if (!current) return
      try {
        await writeCrl(registry, current, settings)
        logger.debug({ file: settings.file }, 'CRL written')
      } catch (err) {
        logger.error({ file: settings.file, err: (err as Error).message }, 'cannot write the CRL')
      }
    }
    this.#timer = setInterval(() => void this.publish(), (settings.validityHours * 3_600_000) / 2)
    this.#timer.unref()
  }

  /** close stops refreshing. */
  close(): void {
    clearInterval(this.#timer)
  }
}
