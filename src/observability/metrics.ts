import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client'
import type { TlsMaterialName } from '../broker/tls-reloader.js'
import { groupExposition } from '../cluster/group-metrics.js'
import type { MetricsExposition } from '../health.js'
import type { DeviceCounts } from './device-counts.js'

/** METRIC_PREFIX starts the name of every metric the bridge defines (Node's process metrics keep theirs). */
export const METRIC_PREFIX = 'mqtt_registration_bridge_'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const DISK_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

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

/** MetricsSources are read when Prometheus scrapes. */
export interface MetricsSources {
  readonly replyCacheEntries: () => number
  readonly ready: () => boolean
  /** The certificates whose notAfter is exported; an absent one is not. */
  readonly certificates: () => { listener: Date; issuing_ca?: { validTo: string } | undefined }
  /**
   * Identities by the state of their newest certificate (active, expiring, expired, revoked), kept current apart
   * from scrapes (DeviceCounts): a scrape reads the last counts, never the registry. Absent: no such metric.
   */
  readonly devices?: Pick<DeviceCounts, 'current' | 'changed'> | undefined
}

/**
 * BridgeMetrics are the bridge's Prometheus metrics in a registry of their own (one per bridge, so that
 * several bridges in one process never share counters). Labels are bounded sets only: never an identity,
 * serial number or client id.
 */
export type BridgeMetrics = ReturnType<typeof createMetrics>

/** createMetrics makes the bridge's metrics, with Node's process and event-loop metrics. */
export function createMetrics(sources: MetricsSources) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // each metric in this bridge's own registry, its name prefixed
  const registers = [registry]
  const own = <C extends { name: string }>(c: C) => ({ ...c, name: METRIC_PREFIX + c.name, registers })
  const counter = <L extends string>(c: CounterConfiguration<L>) => new Counter(own(c))
  const gauge = <L extends string>(c: GaugeConfiguration<L>) => new Gauge(own(c))
  const histogram = <L extends string>(c: HistogramConfiguration<L>) => new Histogram(own(c))
  const metrics = {
    registry,
    registrations: counter({
      name: 'registrations_total',
      help: 'Registration requests answered, by outcome (issued, replayed, coalesced, rejected), error code, mode, issuer and via (device, gateway, aws: a fleet-provisioning create call).',
      labelNames: ['outcome', 'code', 'mode', 'issuer', 'via'],
    }),
    awsRegisterThing: counter({
      name: 'aws_register_thing_total',
      help: 'AWS fleet-provisioning RegisterThing requests answered, by outcome (activated, replayed, rejected).',
      labelNames: ['outcome'],
    }),
    registrationDuration: histogram({
      name: 'registration_duration_seconds',
      help: 'Time from a request arriving to its answer being ready, by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
    }),
    issuanceDuration: histogram({
      name: 'issuance_duration_seconds',
      help: 'Time the issuer took to issue (or fail), by issuer and result (ok, error).',
      labelNames: ['issuer', 'result'],
      buckets: LATENCY_BUCKETS,
    }),
    inFlight: gauge({ name: 'registrations_in_flight', help: 'Registrations being issued now.' }),
    rateLimited: counter({
      name: 'rate_limited_requests_total',
      help: 'Requests refused with RATE_LIMITED.',
    }),
    replyCacheEntries: gauge({
      name: 'reply_cache_entries',
      help: 'Issued replies held for idempotent retries.',
      collect() {
        this.set(sources.replyCacheEntries())
      },
    }),
    auditAppendDuration: histogram({
      name: 'audit_append_duration_seconds',
      help: 'Time to commit an issuance durably (the registry record, group commit), which the audit line follows.',
      buckets: DISK_BUCKETS,
    }),
    connectionsOpen: gauge({
      name: 'connections_open',
      help: 'Device connections open on the MQTT listener (after the TLS handshake).',
    }),
    connectionsRefused: counter({
      name: 'connections_refused_total',
      help: 'MQTT connections refused, by reason (CONNACK refusal, connect_error, max_connections).',
      labelNames: ['reason'],
    }),
    tlsHandshakeFailures: counter({
      name: 'tls_handshake_failures_total',
      help: 'TLS handshakes that failed on the MQTT listener (no or untrusted client certificate, old TLS, timeout).',
    }),
    kubeRequests: counter({
      name: 'kubernetes_api_requests_total',
      help: 'Kubernetes API writes by the cert-manager issuer, by verb (create, delete) and HTTP status (2xx, or the error status).',
      labelNames: ['verb', 'status'],
    }),
    kubeWatchRestarts: counter({
      name: 'kubernetes_watch_restarts_total',
      help: 'Kubernetes watches (informers) the cert-manager issuer restarted after an error, by resource.',
      labelNames: ['resource'],
    }),
    certificateExpiry: gauge({
      name: 'certificate_expiry_timestamp_seconds',
      help: "notAfter of the certificates the bridge serves with, as a Unix time: 'listener' and the embedded 'issuing_ca'.",
      labelNames: ['certificate'],
      aggregator: 'min',
      collect() {
        const { listener, issuing_ca } = sources.certificates()
        this.set({ certificate: 'listener' }, listener.getTime() / 1000)
        if (issuing_ca) this.set({ certificate: 'issuing_ca' }, new Date(issuing_ca.validTo).getTime() / 1000)
      },
    }),
    tlsReloads: counter({
      name: 'tls_reloads_total',
      help: 'TLS material re-read after its files changed, by material (listener, factory_ca, production_ca, issuing_ca, operational_ca) and result (ok, refused).',
      labelNames: ['material', 'result'],
    }),
    fileReloads: counter({
      name: 'file_reloads_total',
      help: 'Operator files re-read while running (file change or SIGHUP), by file (deny_list, gateway_policy: with its allow-lists, hook_token, hook_tls, aws_templates) and result (ok, refused: the file in force stays).',
      labelNames: ['file', 'result'],
    }),
    hookCalls: counter({
      name: 'hook_calls_total',
      help: 'Calls to the registration hook, by result after retries (allow, deny, error, timeout).',
      labelNames: ['result'],
    }),
    hookDuration: histogram({
      name: 'hook_duration_seconds',
      help: 'Time a call to the registration hook took, retries included, by result.',
      labelNames: ['result'],
      buckets: LATENCY_BUCKETS,
    }),
    devices: gauge({
      name: 'devices',
      help: 'Identities in the registry by the state of their newest certificate: active, expiring (within 7 days), expired, revoked.',
      labelNames: ['state'],
      aggregator: 'max', // every process counts the same shared registry
      async collect() {
        const states = await sources.devices?.current()
        for (const [state, n] of Object.entries(states ?? {})) this.set({ state }, n)
      },
    }),
    /** devicesChanged says an issuance changed the registry: the device counts are counted again soon. */
    devicesChanged: (): void => sources.devices?.changed(),
    ready: gauge({
      name: 'ready',
      help: '1 while /readyz answers 200, else 0 (with workers: 1 while every worker is ready).',
      aggregator: 'min',
      collect() {
        this.set(sources.ready() ? 1 : 0)
      },
    }),
  }
  for (const result of RELOAD_RESULTS) {
    for (const material of Object.keys(TLS_MATERIALS)) metrics.tlsReloads.inc({ material, result }, 0)
    for (const file of RELOADED_FILES) metrics.fileReloads.inc({ file, result }, 0)
  }
  return metrics
}

/** RELOADED_FILES are the operator files reloaded while the bridge runs (the `file` label of file_reloads_total). */
export const RELOADED_FILES = [
  'deny_list',
  'gateway_policy',
  'hook_token',
  'hook_tls',
  'aws_templates',
] as const

/** metricsExposition renders the metrics for the health server's /metrics (the whole group's, in a worker). */
export const metricsExposition = (metrics: BridgeMetrics): MetricsExposition =>
  groupExposition(metrics.registry)
