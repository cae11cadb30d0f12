import type { Logger } from 'pino'
import { untilAborted } from '../common/abortable.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuers/issuer.js'
import { RegistrationError } from '../protocol/errors.js'
import type { IssuedReply, PendingReply } from '../protocol/messages.js'
import type { NewIssuance, Registry } from '../registry/registry.js'
import { type SharedAnswer, type SharedState, shareable } from '../state/shared-state.js'
import { type AuditRecord, auditRecordFor } from './audit-log.js'
import type { IssuedIndex } from './issued-index.js'
import type { LifecycleStep } from './renewal.js'
import { issuedReply } from './replies.js'

/** IssuanceObserver hears issuance and recording times, for metrics. */
export interface IssuanceObserver {
  issuanceStarted(): void
  issuanceEnded(seconds: number, ok: boolean): void
  auditAppended(seconds: number): void
}

/** IssuanceDeps are what one issuance calls: the issuer, and where it is recorded and shared. */
export interface IssuanceDeps {
  readonly issuer: Issuer
  /** The issued index (answers that survive a restart) and, through it, the audit log. */
  readonly issued: IssuedIndex
  /** Records every issuance durably (identity, serial, expiry, owner). */
  readonly registry?: Registry | undefined
  /** Sends a progress notice (`pending`) to a connected device; it is never kept for a later session. */
  readonly notify: (identity: string, notice: PendingReply) => void
  readonly observer?: IssuanceObserver | undefined
  readonly state: SharedState
}

/** IssuanceSettings are read on every issuance (extraTrustPem may be a getter: a rotated file applies at once). */
export interface IssuanceSettings {
  readonly pendingAfterMs: number
  readonly issuanceTimeoutMs: number
  readonly extraTrustPem: string
  readonly productionUrl: string | undefined
  readonly replyCache: { readonly ttlSeconds: number }
}

/** IssuanceStep is what the service decided about a request before issuing it. */
export type IssuanceStep = {
  readonly key: string
  readonly requestId: string | undefined
  /** An answer another process shared for this request (its serial, when a key was involved). */
  readonly settled?: SharedAnswer | undefined
} & Partial<LifecycleStep>

/**
 * issueAndRecord is the issuance step of a registration: issue (with a `pending` notice and a timeout) ▶ build
 * the reply ▶ record it durably (registry, issued index, shared answer, audit log) ▶ return it.
 */
export async function issueAndRecord(
  deps: IssuanceDeps,
  settings: IssuanceSettings,
  order: IssuanceOrder,
  { key, requestId, settled, event, ...renewal }: IssuanceStep,
  controller: AbortController,
  log: Logger,
): Promise<IssuedReply> {
  const { issuer, issued, notify, registry, observer, state } = deps
  const { registeredBy } = order
  // a retry whose first answer is gone (server-key mode after a restart or on another process; the registry's
  // record of it after a crash) gets a new certificate that replaces the one issued; a renewal supersedes the
  // certificate it was made with
  const supersedes = renewal.supersedes ?? issued.lookup(key)?.record.serialNumber ?? settled?.serialNumber
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
    const record = auditRecordFor(credentials, {
      identity: order.identity,
      issuer: issuer.name,
      keySource: order.csr ? 'device' : 'bridge',
      ...(registeredBy === undefined ? {} : { registeredBy }),
      ...(requestId === undefined ? {} : { requestId }),
      requestHash: key,
      ...(supersedes === undefined ? {} : { supersedes }),
      ...(event === undefined ? {} : { event }),
    })
    const reply = issuedReply(credentials, {
      requestId,
      extraTrustPem: settings.extraTrustPem,
      productionUrl: settings.productionUrl,
    })
    // shared with the other processes after the index, before the audit record: the answer when it is
    // public, else the serial a replacement supersedes
    const share = (): Promise<void> =>
      state
        .share(key, shareable(reply), settings.replyCache.ttlSeconds * 1000)
        .catch((err: unknown) => log.warn({ err }, 'answer not shared: shared state unavailable'))
    // all durable before the reply; certificates are public: CSR-mode answers are kept in the index, a
    // generated key never is
    // shared state: the registry (the record of what exists), then the index, shared, audited, so that a
    // process killed anywhere leaves nothing a retry elsewhere misses. One process: the index (and the audit
    // line) first, then the registry, so that a crash between them leaves an answer the retry replays rather
    // than a registry record with no answer (which would issue a second certificate)
    const entry = registryEntry(record, credentials, requestId)
    if (state.shared) await registry?.record(entry)
    await issued.record({ key, record, ...(order.csr ? { reply } : {}) }, share)
    if (!state.shared) await registry?.record(entry)
    observer?.auditAppended((performance.now() - recordStarted) / 1000)
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

function registryEntry(
  record: AuditRecord,
  credentials: Credentials,
  requestId: string | undefined,
): NewIssuance {
  return {
    ...record,
    issuedAt: new Date(record.time),
    notBefore: credentials.notBefore,
    notAfter: credentials.notAfter,
    requestId,
  }
}
