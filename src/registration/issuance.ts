import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { untilAborted } from '../common/abortable.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { certificatesFromPem } from '../pki/pem.js'
import { RegistrationError } from '../protocol/errors.js'
import type { IssuedReply, PendingReply } from '../protocol/messages.js'
import type { NewIssuance, Registry } from '../registry/registry.js'
import type { AuditTrail } from './audit-trail.js'
import type { LifecycleStep } from './renewal.js'
import { issuedReply } from './replies.js'

/** IssuanceObserver hears issuance and recording times, for metrics. */
export interface IssuanceObserver {
  issuanceStarted(): void
  issuanceEnded(seconds: number, ok: boolean): void
  auditAppended(seconds: number): void
}

/** IssuanceDeps are what one issuance calls: the issuer, and where it is recorded. */
export interface IssuanceDeps {
  readonly issuer: Issuer
  /** The one durable record of every issuance (group-committed: one sync for many). */
  readonly registry: Registry
  /** The audit log, written from committed records. */
  readonly audit: AuditTrail
  /** Sends a progress notice (`pending`) to a connected device; it is never kept for a later session. */
  readonly notify: (identity: string, notice: PendingReply) => void
  readonly observer?: IssuanceObserver | undefined
}

/** IssuanceSettings are read on every issuance (extraTrustPem may be a getter: a rotated file applies at once). */
export interface IssuanceSettings {
  readonly pendingAfterMs: number
  readonly issuanceTimeoutMs: number
  readonly extraTrustPem: string
  readonly productionUrl: string | undefined
}

/** IssuanceStep is what the service decided about a request before issuing it. */
export type IssuanceStep = {
  readonly key: string
  readonly requestId: string | undefined
} & Partial<LifecycleStep>

/**
 * issueAndRecord is the issuance step of a registration: issue (with a `pending` notice and a timeout) ▶ commit
 * the one durable record (the registry: certificate, request hash, event, what it supersedes) ▶ the audit line,
 * from that record ▶ the reply. Nothing is answered before the commit, so a crash anywhere leaves either no
 * certificate or one the retry of the same request finds.
 */
export async function issueAndRecord(
  deps: IssuanceDeps,
  settings: IssuanceSettings,
  order: IssuanceOrder,
  { key, requestId, event, supersedes }: IssuanceStep,
  controller: AbortController,
  log: Logger,
): Promise<IssuedReply> {
  const { issuer, notify, registry, observer, audit } = deps
  const { registeredBy } = order
  const started = performance.now()
  // a downstream device's progress goes to its gateway with the batch, not to the device's own topic
  const pending = setTimeout(() => {
    if (registeredBy !== undefined) return
    notify(order.identity, { status: 'pending', ...(requestId === undefined ? {} : { requestId }) })
  }, settings.pendingAfterMs)
  const timeout = setTimeout(
    () => controller.abort(new RegistrationError('ISSUANCE_TIMEOUT', 'issuance timed out; retry later')),
    settings.issuanceTimeoutMs,
  )
  observer?.issuanceStarted()
  let issuedOk = false
  try {
    const credentials = await untilAborted(issuer.issue(order, controller.signal), controller.signal)
    issuedOk = true
    observer?.issuanceEnded((performance.now() - started) / 1000, true)
    const recordStarted = performance.now()
    const entry: NewIssuance = {
      identity: order.identity,
      serialNumber: credentials.serialNumber,
      notBefore: credentials.notBefore,
      notAfter: credentials.notAfter,
      keySource: order.csr ? 'device' : 'bridge',
      issuer: issuer.name,
      sha256Fingerprint: fingerprintOf(credentials),
      issuedAt: new Date(),
      registeredBy,
      requestId,
      requestHash: key,
      event,
      supersedes,
      // public: a retry of the same CSR-mode request is answered from them; a key is never recorded
      certificatePem: credentials.certificatePem,
      caCertificatesPem: credentials.caCertificatesPem,
      writer: audit.writer,
    }
    await registry.record(entry)
    observer?.auditAppended((performance.now() - recordStarted) / 1000)
    audit.committed(entry)
    const reply = issuedReply(credentials, {
      requestId,
      extraTrustPem: settings.extraTrustPem,
      productionUrl: settings.productionUrl,
    })
    log.info(
      { requestId, serialNumber: credentials.serialNumber, ms: Math.round(performance.now() - started) },
      event === 'renewed' ? 'certificate renewed' : 'certificate issued',
    )
    return reply
  } finally {
    if (!issuedOk) observer?.issuanceEnded((performance.now() - started) / 1000, false)
    clearTimeout(pending)
    clearTimeout(timeout)
  }
}

/** fingerprintOf is the SHA-256 of the issued certificate's DER, hex. */
function fingerprintOf(credentials: Credentials): string {
  const der = certificatesFromPem(credentials.certificatePem)[0] ?? Buffer.alloc(0)
  return createHash('sha256').update(der).digest('hex')
}
