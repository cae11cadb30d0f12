import { availableParallelism } from 'node:os'
import { buildCsr } from '../src/pki/csr-builder.js'
import { generateKey } from '../src/pki/keys.js'
import { startRedis } from '../test/support/redis.js'
import { serverCpuMs } from './lib/cpu.js'
import { closedLoop, type Device } from './lib/load.js'
import type { BenchPki } from './lib/pki.js'
import { startAedesEcho, startBridge, startMosquittoEcho, type Target } from './lib/servers.js'
import { type Summary, summarize } from './lib/stats.js'

/** ScaleRow is one server measured at one concurrency: its rate, latency and CPU time per registration. */
export interface ScaleRow extends Summary {
  readonly server: string
  readonly workers: number
  readonly concurrency: number
  readonly failures: number
  /** Server CPU time (user + system, every process of the server) per registration, ms. */
  readonly cpuMsPerRegistration: number
}

/** ScaleResult: the rows, and the latency the shared state (Redis) adds to a one-process bridge. */
export interface ScaleResult {
  readonly cores: number
  readonly rows: ScaleRow[]
  readonly sharedStateP50Ms: number
}

/**
 * scaleBenchmark measures CSR-mode registrations (fresh connection each) against the bridge with one process
 * (in-memory state), one process on Redis, N workers on Redis, plain Aedes and mosquitto, with each server's
 * CPU time read from its processes' own counters (/proc/<pid>/stat) before and after the measured run.
 */
export async function scaleBenchmark(
  bench: BenchPki,
  options: { concurrency: number; durationMs: number; workers?: number },
): Promise<ScaleResult> {
  const devices: Device[] = await Promise.all(
    bench.devices.map(async (d) => {
      const keys = await generateKey('ECDSA-P256')
      return { ...d, csr: buildCsr(d.id, keys.privateKey, keys.publicKey) }
    }),
  )
  const redis = await startRedis()
  const workers = options.workers ?? availableParallelism()
  const rows: ScaleRow[] = []
  const measure = async (label: string, processes: number, target: Target): Promise<void> => {
    try {
      await closedLoop(target, devices, options.concurrency, options.durationMs / 5, 'csr') // warm-up
      const before = serverCpuMs(target.pids)
      const result = await closedLoop(target, devices, options.concurrency, options.durationMs, 'csr')
      const cpu = serverCpuMs(target.pids) - before
      const summary = summarize(result.latencies, result.seconds)
      const row: ScaleRow = {
        server: label,
        workers: processes,
        concurrency: options.concurrency,
        failures: result.failures,
        cpuMsPerRegistration: Math.round((cpu / Math.max(1, summary.count)) * 100) / 100,
        ...summary,
      }
      rows.push(row)
      process.stderr.write(
        `scale ${label} c=${row.concurrency}: ${row.perSecond}/s p50 ${row.p50} ms, ${row.cpuMsPerRegistration} ms CPU each\n`,
      )
    } finally {
      await target.stop()
    }
  }
  try {
    const dir = bench.pki.stateDir
    await measure('bridge (memory)', 1, await startBridge(dir))
    const shared = [`state.redis.url=${redis.url}`]
    await measure('bridge (Redis)', 1, await startBridge(dir, [...shared, 'state.workers=1']))
    await measure(
      `bridge (Redis, ${workers} workers)`,
      workers,
      await startBridge(dir, [...shared, `state.workers=${workers}`]),
    )
    await measure('aedes', 1, await startAedesEcho(bench.pki.dir))
    await measure('mosquitto', 1, await startMosquittoEcho(bench.pki.dir))
  } finally {
    await redis.stop()
  }
  const p50 = (server: string) => rows.find((r) => r.server === server)?.p50 ?? Number.NaN
  return {
    cores: availableParallelism(),
    rows,
    sharedStateP50Ms: Math.round((p50('bridge (Redis)') - p50('bridge (memory)')) * 100) / 100,
  }
}

/** scaleMarkdown renders the section of docs/benchmarks.md, with the rate per core the CPU figures imply. */
export function scaleMarkdown(
  s: ScaleResult,
  table: (head: string[], rows: (string | number)[][]) => string,
): string[] {
  const aedes = s.rows.find((r) => r.server === 'aedes')
  const bridge = s.rows.find((r) => r.server === 'bridge (Redis)')
  const perCore = (r: ScaleRow | undefined) => (r ? Math.round(1000 / r.cpuMsPerRegistration) : Number.NaN)
  return [
    '## Workers, replicas and server CPU per registration',
    '',
    `CSR mode, a fresh mutual-TLS connection per registration, ${s.rows[0]?.concurrency ?? '?'} concurrent, on ${s.cores} cores shared with the load generator. CPU time is each server's own (user + system of all its processes, from /proc/<pid>/stat, workers included): the figure that stays meaningful when the load generator shares the machine.`,
    '',
    table(
      ['server', 'processes', 'registrations/s', 'p50 ms', 'p99 ms', 'CPU ms / registration', 'failures'],
      s.rows.map((r) => [r.server, r.workers, r.perSecond, r.p50, r.p99, r.cpuMsPerRegistration, r.failures]),
    ),
    '',
    `Shared state (Redis on loopback) adds ${s.sharedStateP50Ms} ms to the median registration of one process.`,
    '',
    `On paper, from CPU time alone: one core serves about ${perCore(bridge)} registrations/s through the bridge on Redis (${perCore(aedes)}/s through plain Aedes), so with workers the rate grows with the cores given to the bridge until Redis, the issuer or the network saturates; the table's measured rates are lower because the load generator takes its share of the same cores.`,
    '',
  ]
}
