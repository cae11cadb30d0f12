import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { Backoff } from '../common/backoff.js'
import { relayGroupMetrics } from './group-metrics.js'
import { WORKER_SLOT_ENV } from './worker-slot.js'

/** WorkerMessage is what a worker tells the primary: that it listens, on which port. */
export interface WorkerMessage {
  readonly bridgeListening: number
}

/** workerCount is how many bridge processes to run: state.workers, or one per core with Redis, else 1. */
export function workerCount(state: { workers: number; redis: { url?: string | undefined } }): number {
  if (state.workers > 0) return state.workers
  return state.redis.url === undefined ? 1 : availableParallelism()
}

/** A worker that stayed up this long has recovered: the restart delay starts over. */
const HEALTHY_MS = 10_000

/**
 * runPrimary starts `count` workers (each a full bridge on the same listener port, node:cluster sharing it),
 * replaces a worker that dies after it was listening (in its slot, after a backoff when it keeps dying), and on
 * SIGINT/SIGTERM stops every worker and exits: 0 when each stopped cleanly. A worker that exits before it
 * listens — the first of its slot or a replacement — failed to start (Redis or PostgreSQL unreachable, bad
 * configuration): it would fail again, so every worker is stopped and the primary exits 1, never respawning
 * forever nor staying up with nothing listening. It resolves with the port once every worker listens.
 */
export function runPrimary(count: number, write: (line: string) => void): Promise<number> {
  const backoff = new Backoff({ initialMs: 100, maxMs: 5_000 })
  const slots = new Map<Worker, { slot: number; startedAt: number; listening: boolean }>()
  const listening = new Set<number>()
  let stopping = false
  let failed = false
  let resolveReady: (port: number) => void = () => {}
  const ready = new Promise<number>((resolve) => {
    resolveReady = resolve
  })
  const fork = (slot: number): void => {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) })
    const entry = { slot, startedAt: Date.now(), listening: false }
    slots.set(worker, entry)
    relayGroupMetrics(worker)
    worker.on('message', (message: Partial<WorkerMessage>) => {
      if (typeof message?.bridgeListening !== 'number') return
      entry.listening = true
      listening.add(slot)
      if (listening.size === count) resolveReady(message.bridgeListening)
    })
  }
  cluster.on('exit', (worker, code, signal) => {
    const entry = slots.get(worker)
    slots.delete(worker)
    if (!entry) return
    if (stopping) {
      if (code !== 0) failed = true
      if (slots.size === 0) process.exit(failed ? 1 : 0)
      return
    }
    if (!entry.listening) {
      // a worker that never started would fail again: the bridge cannot do its job, so it exits
      write(`worker ${entry.slot} failed to start (${signal ?? `exit ${code}`}); stopping`)
      stop(1)
      return
    }
    if (Date.now() - entry.startedAt > HEALTHY_MS) backoff.reset()
    const delay = backoff.next()
    write(`worker ${entry.slot} died (${signal ?? `exit ${code}`}); replacing it in ${delay} ms`)
    setTimeout(() => {
      if (!stopping) fork(entry.slot)
    }, delay)
  })
  const stop = (status = 0): void => {
    if (stopping) return
    stopping = true
    if (status !== 0) failed = true
    if (slots.size === 0) process.exit(failed ? 1 : 0)
    for (const worker of slots.keys()) worker.process.kill('SIGTERM')
  }
  process.once('SIGINT', () => stop())
  process.once('SIGTERM', () => stop())
  for (let slot = 0; slot < count; slot++) fork(slot)
  return ready
}
