import type { TlsMaterialName } from '../broker/tls-reloader.js'
import { ERROR_CODES } from '../protocol/errors.js'
import type { Outcome } from '../registration/observer.js'
import type { BridgeMetrics } from './bridge-metrics.js'

// Every counter series whose labels are known in advance starts at 0, so that the first event is an increase
// Prometheus sees (a series born at 1 has no increase: `increase(x[15m]) > 0` would miss the first refusal).
// Records, not lists, so that the compiler says when a label value is added and not initialised.

const TLS_MATERIALS: Record<TlsMaterialName, true> = {
  listener: true,
  factory_ca: true,
  production_ca: true,
  issuing_ca: true,
  operational_ca: true,
}
const RELOAD_RESULTS = ['ok', 'refused'] as const
const OUTCOMES: Record<Outcome, true> = { issued: true, replayed: true, coalesced: true, rejected: true }
const MODES = ['', 'csr', 'server_key'] as const
const VIA = ['device', 'gateway'] as const

/** initTlsReloads: tls_reloads_total for every material and result. */
export function initTlsReloads(metrics: Pick<BridgeMetrics, 'tlsReloads'>): void {
  for (const material of Object.keys(TLS_MATERIALS))
    for (const result of RELOAD_RESULTS) metrics.tlsReloads.inc({ material, result }, 0)
}

/** initRefusals: connections_refused_total for every reason the broker reports. */
export function initRefusals(metrics: BridgeMetrics, reasons: readonly string[]): void {
  for (const reason of reasons) metrics.connectionsRefused.inc({ reason }, 0)
}

/**
 * initRegistrations: registrations_total for this issuer, every way (device, gateway) and mode (none when the
 * request could not be read): the answered outcomes without a code, and a rejection with every error code.
 */
export function initRegistrations(metrics: BridgeMetrics, issuer: string): void {
  for (const via of VIA)
    for (const mode of MODES) {
      for (const outcome of Object.keys(OUTCOMES))
        if (outcome !== 'rejected') metrics.registrations.inc({ outcome, code: '', mode, issuer, via }, 0)
      for (const code of Object.keys(ERROR_CODES))
        metrics.registrations.inc({ outcome: 'rejected', code, mode, issuer, via }, 0)
    }
}
