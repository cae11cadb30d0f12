import type { Server } from 'node:http'
import type { Logger } from 'pino'
import type { TlsReloader } from '../broker/tls-reloader.js'
import type { CleanupStack } from '../common/cleanup-stack.js'
import type { Config } from '../config/load.js'
import { createHealthServer } from '../health.js'
import type { Issuer } from '../issuers/issuer.js'
import { DeviceCounts } from '../observability/device-counts.js'
import type { BridgeMetrics } from '../observability/metrics.js'
import {
  createMetrics,
  type MetricsSources,
  metricsExposition,
  type RELOADED_FILES,
} from '../observability/metrics.js'
import {
  expiryConditions,
  type Reachable,
  Readiness,
  type ReadinessCondition,
  storeConditions,
} from '../observability/readiness.js'
import { EXPIRING_WITHIN_MS } from '../registry/expiry.js'
import type { Registry } from '../registry/registry.js'

/**
 * wireMetrics makes the metrics (health.metrics), reading `sources` at each scrape, with the device counts behind
 * them; `reloaded` counts a reloaded file's result, `start` starts counting devices.
 */
export function wireMetrics(
  config: Config,
  deps: { registry: Registry; logger: Logger; cleanup: CleanupStack },
  sources: Omit<MetricsSources, 'devices'>,
) {
  const devices = config.health.metrics
    ? countDevices(deps.registry, config.health.deviceCountsSeconds * 1000, deps.logger)
    : undefined
  deps.cleanup.defer(async () => devices?.close())
  const metrics = devices && createMetrics({ ...sources, devices })
  return {
    metrics,
    reloaded: (file: (typeof RELOADED_FILES)[number]) => (ok: boolean) =>
      metrics?.fileReloads.inc({ file, result: ok ? 'ok' : 'refused' }),
    start: () => devices?.start(),
  }
}

/** wireHealth makes the health server (health.enabled), closed on cleanup; the caller binds it. */
export function wireHealth(
  config: Config,
  deps: {
    ready: Parameters<typeof createHealthServer>[0]
    metrics: BridgeMetrics | undefined
    crlFile: string | undefined
  },
  cleanup: CleanupStack,
): Server | undefined {
  const health = config.health.enabled
    ? createHealthServer(deps.ready, deps.metrics && metricsExposition(deps.metrics), {
        crlFile: deps.crlFile,
      })
    : undefined
  cleanup.defer(
    () => new Promise<void>((resolve) => (health?.listening ? health.close(() => resolve()) : resolve())),
  )
  return health
}

/**
 * readinessOf says whether the bridge is ready: listening, able to issue, its certificates current, its stores
 * reachable, its registration hook answering. Made once listening, so that its first word is not a "not ready"
 * it is about to take back.
 */
export function readinessOf(
  parts: {
    broker: { listening: boolean }
    issuer: Issuer
    tls: TlsReloader
    state: Reachable
    registry: Reachable
    /** The registration hook's condition, when there is a fail-closed hook. */
    hook?: readonly ReadinessCondition[]
  },
  logger: Logger,
): Readiness {
  const { broker, issuer, tls } = parts
  return new Readiness(
    [
      { reason: 'the MQTT listener is not accepting connections', ok: () => broker.listening },
      { reason: `the issuer (${issuer.name}) cannot issue`, ok: () => issuer.isReady() },
      ...expiryConditions({
        listenerCertificate: () => tls.listenerCertificate,
        factoryCas: () => tls.factoryCas,
        issuingCa: () => tls.issuingCa?.ca.certificate,
      }),
      ...storeConditions(parts.state, parts.registry),
      ...(parts.hook ?? []),
    ],
    logger,
  )
}

/**
 * countDevices makes what keeps the registry's devices-by-state counts for /metrics: one aggregate query at
 * start, every `intervalMs` (health.deviceCountsSeconds: other replicas' issuances, `revoke`, time passing), and
 * at most once a second after this process's issuances (less often when a count takes longer than 50 ms: counting
 * never takes more than 5% of the time). It counts once started (DeviceCounts.start).
 */
function countDevices(registry: Registry, intervalMs: number, logger: Logger): DeviceCounts {
  let failing = false
  return new DeviceCounts({
    count: async () => {
      const counted = await registry.expiryCounts(new Date(), EXPIRING_WITHIN_MS)
      if (failing) logger.info('device counts: counting again')
      failing = false
      return counted
    },
    intervalMs,
    minSpacingMs: 1_000,
    spacingFactor: 20,
    onError: (err) => {
      if (!failing)
        logger.warn({ err: (err as Error).message }, 'device counts: cannot count; keeping the last')
      failing = true
    },
  })
}
