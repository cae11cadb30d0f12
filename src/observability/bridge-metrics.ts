import type { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * BridgeMetrics are the bridge's Prometheus metrics in a registry of their own (one per bridge, so that
 * several bridges in one process never share counters). Labels are bounded sets only: never an identity,
 * serial number or client id.
 */
export interface BridgeMetrics {
  readonly registry: Registry
  readonly registrations: Counter<'outcome' | 'code' | 'mode' | 'issuer' | 'via'>
  readonly registrationDuration: Histogram<'outcome'>
  readonly issuanceDuration: Histogram<'issuer' | 'result'>
  readonly inFlight: Gauge
  readonly rateLimited: Counter
  readonly replyCacheEntries: Gauge
  readonly auditAppendDuration: Histogram
  readonly connectionsOpen: Gauge
  readonly connectionsRefused: Counter<'reason'>
  readonly tlsHandshakeFailures: Counter
  readonly kubeRequests: Counter<'verb' | 'status'>
  readonly kubeWatchRestarts: Counter<'resource'>
  readonly certificateExpiry: Gauge<'certificate'>
  readonly tlsReloads: Counter<'material' | 'result'>
  readonly fileReloads: Counter<'file' | 'result'>
  readonly ready: Gauge
  readonly devices: Gauge<'state'>
  /** devicesChanged says an issuance changed the registry: the device counts are counted again soon. */
  readonly devicesChanged: () => void
}
