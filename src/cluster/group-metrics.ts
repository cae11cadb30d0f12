import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client'

const REQUEST = 'mrb:group-metrics?'
const RESPONSE = 'mrb:group-metrics'
const TIMEOUT_MS = 5_000

interface GroupMetricsMessage {
  readonly type: typeof REQUEST | typeof RESPONSE
  readonly id: number
  readonly body?: string
  readonly error?: string
}

/** Exposition is what /metrics serves. */
export type Exposition = () => Promise<{ contentType: string; body: string }>

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined

/**
 * relayGroupMetrics (in the primary) answers a worker that serves a scrape: prom-client's AggregatorRegistry asks
 * every worker for its registry and aggregates them (counters and histograms summed; gauges as each declares).
 */
export function relayGroupMetrics(worker: Worker): void {
  aggregator ??= new AggregatorRegistry<PrometheusContentType>()
  const group = aggregator
  worker.on('message', (message: Partial<GroupMetricsMessage>) => {
    if (message?.type !== REQUEST || typeof message.id !== 'number') return
    const { id } = message
    group.clusterMetrics().then(
      (body: string) => worker.isConnected() && worker.send({ type: RESPONSE, id, body }),
      (err: Error) => worker.isConnected() && worker.send({ type: RESPONSE, id, error: err.message }),
    )
  })
}

/**
 * groupExposition is /metrics for `registry`: outside a worker its own metrics; in a worker (serve --workers) the
 * whole group's, since a scrape through the shared health port reaches one worker at a time.
 */
export function groupExposition(registry: Registry): Exposition {
  const local: Exposition = async () => ({
    contentType: registry.contentType,
    body: await registry.metrics(),
  })
  if (!cluster.isWorker) return local
  AggregatorRegistry.setRegistries([registry])
  new AggregatorRegistry() // in a worker: answers the primary's requests with `registry`
  let next = 0
  return () =>
    new Promise((resolve, reject) => {
      const id = next++
      const timer = setTimeout(() => settle(new Error('the group metrics did not come in time')), TIMEOUT_MS)
      const settle = (err?: Error, body?: string): void => {
        clearTimeout(timer)
        process.off('message', onMessage)
        if (err) reject(err)
        else resolve({ contentType: registry.contentType, body: body ?? '' })
      }
      const onMessage = (message: Partial<GroupMetricsMessage>): void => {
        if (message?.type !== RESPONSE || message.id !== id) return
        settle(message.error === undefined ? undefined : new Error(message.error), message.body)
      }
      process.on('message', onMessage)
      process.send?.({ type: REQUEST, id } satisfies GroupMetricsMessage)
    })
}
