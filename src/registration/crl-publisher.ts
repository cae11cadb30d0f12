import type { Logger } from 'pino'
import { replaceFile } from '../common/replace-file.js'
import type { Config } from '../config/load.js'
import { buildCrl } from '../pki/crl.js'
import { toPem } from '../pki/pem.js'
import type { LoadedCa } from '../pki/signer.js'
import { REVOCATION_REASONS, type Registry } from '../registry/registry.js'

/** CrlSettings say where the CRL goes (mosquitto's `crlfile` points there) and how long each one is valid. */
type CrlSettings = Config['lifecycle']['crl']

/** CERTIFICATE_HOLD is RFC 5280's reversible CRLReason: a pending certificate (AWS create call) until RegisterThing. */
const CERTIFICATE_HOLD = 6

/**
 * writeCrl builds the CRL of every revoked certificate in the registry, and every pending one on hold
 * (certificateHold: RegisterThing activates it, and the next CRL no longer lists it), signed by the issuing CA, and
 * writes it (PEM) to the configured file. The CRL number is the time in milliseconds, so that it grows across the bridge
 * and the CLI, which both write it. Returns the DER.
 */
export async function writeCrl(
  registry: Registry,
  ca: LoadedCa,
  settings: CrlSettings,
  now = new Date(),
): Promise<Buffer> {
  const [revoked, held] = await Promise.all([registry.revoked(), registry.held()])
  const der = buildCrl(
    ca.signer,
    [
      ...revoked.map((r) => ({
        serialNumber: r.serialNumber,
        revokedAt: r.revokedAt ?? now,
        reasonCode: REVOCATION_REASONS[r.revocationReason ?? 'unspecified'],
      })),
      ...held.map((r) => ({
        serialNumber: r.serialNumber,
        revokedAt: r.issuedAt,
        reasonCode: CERTIFICATE_HOLD,
      })),
    ],
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
 * validity, well before nextUpdate, so a production broker never holds a stale CRL, and whenever the pending
 * certificates change (AWS fleet provisioning). `revoke` (the CLI) writes one at once on every revocation. Each
 * write first revokes the pending certificates whose ownership token expired (`pendingLifetimeMs`). Calls while one
 * write runs make one more write after it, not one each.
 */
export class CrlPublisher {
  readonly #timer: NodeJS.Timeout
  /** publish writes the CRL (a failure is logged); it resolves once a write started after the call is done. */
  readonly publish: () => Promise<void>

  constructor(
    registry: Registry,
    ca: () => LoadedCa | undefined,
    settings: CrlSettings & { readonly pendingLifetimeMs: number },
    logger: Logger,
  ) {
    const write = async (): Promise<void> => {
      const current = ca()
      if (!current) return
      try {
        const now = new Date()
        const expired = await registry.expirePending(now, settings.pendingLifetimeMs)
        if (expired > 0)
          logger.info({ expired }, 'pending certificates revoked: their ownership token expired')
        await writeCrl(registry, current, settings, now)
        logger.debug({ file: settings.file }, 'CRL written')
      } catch (err) {
        logger.error({ file: settings.file, err: (err as Error).message }, 'cannot write the CRL')
      }
    }
    let running: Promise<void> | undefined
    let next: Promise<void> | undefined
    this.publish = () => {
      if (next) return next
      if (!running) {
        running = write().finally(() => (running = undefined))
        return running
      }
      next = running.then(() => {
        next = undefined
        return this.publish()
      })
      return next
    }
    this.#timer = setInterval(() => void this.publish(), (settings.validityHours * 3_600_000) / 2)
    this.#timer.unref()
  }

  /** close stops refreshing. */
  close(): void {
    clearInterval(this.#timer)
  }
}
