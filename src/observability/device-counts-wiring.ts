import type { Logger } from 'pino'
import { EXPIRING_WITHIN_MS } from '../registry/expiry.js'
import type { Registry } from '../registry/registry.js'
import { DeviceCounts } from './device-counts.js'

/**
 * countDevices makes what keeps the registry's devices-by-state counts for /metrics: one aggregate query at
 * start, every `intervalMs` (health.deviceCountsSeconds: other replicas' issuances, `revoke`, time passing), and
 * at most once a second after this process's issuances (less often when a count takes longer than 50 ms: counting
 * never takes more than 5% of the time). It counts once started (DeviceCounts.start).
 */
export function countDevices(registry: Registry, intervalMs: number, logger: Logger): DeviceCounts {
  let failing = false
  const counts = new DeviceCounts({
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
  return counts
}
