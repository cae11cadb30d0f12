import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCsr } from '../src/pki/csr-builder.js'
import { generateKey } from '../src/pki/keys.js'
import { startPostgres } from '../test/support/postgres.js'
import { startRedis } from '../test/support/redis.js'
import { serverCpuMs } from './lib/cpu.js'
import { closedLoop, type Device } from './lib/load.js'
import type { BenchPki } from './lib/pki.js'
import { startAedesEcho, startBridge, startMosquittoEcho, type Target } from './lib/servers.js'
import { type Summary, summarize } from './lib/stats.js'
import { countSyncs, straceAvailable } from './lib/syncs.js'
import {
  type Counts,
  difference,
  perRegistration,
  postgresStatementStats,
  redisCommandStats,
  type WireCount,
} from './lib/wire.js'

/** ScaleRow is one server measured at one concurrency: its rate, latency and CPU time per registration. */
export interface ScaleRow extends Summary {
  readonly server: string
  readonly workers: number
  readonly concurrency: number
  readonly failures: number
  /** Server CPU time (user + system, every process of the server) per registration, ms. */
  readonly cpuMsPerRegistration: number
  /** The bridge's fsync, fdatasync and sync_file_range calls (all its processes and threads) per registration. */
  readonly syncsPerRegistration?: number
  /** Those calls by file name (a directory's own name for a directory), per registration. */
  readonly syncsByFile?: Record<string, number>
  /** Commands Redis executed (INFO commandstats, every client of the bridge) per registration. */
  readonly redis?: WireCount
  /** Statements PostgreSQL executed (pg_stat_statements; one round trip each) per registration. */
  readonly postgres?: WireCount & { readonly commitsPerRegistration: number }
}

/** ScaleResult: the rows, and the latency the shared state (Redis) adds to a one-process bridge. */
export interface ScaleResult {
  readonly cores: number
  readonly rows: ScaleRow[]
  readonly sharedStateP50Ms: number
  /** What shared state adds to the median at `lowConcurrency`: Redis alone, and Redis with PostgreSQL. */
  readonly sharedStateLow?: { concurrency: number; redisP50Ms: number; postgresP50Ms: number }
  /** Whether the bridge ran under strace, counting its sync calls (strace installed). */
  readonly syncsCounted?: boolean
}

/** Probe reads a server's counters around the measured phase: `after` runs before the server stops. */
interface Probe {
  before(): Promise<void>
  after(registrations: number): Promise<Partial<ScaleRow>>
  /** afterStop runs once the server has stopped (PostgreSQL counters its backends flush when they exit). */
  afterStop?(registrations: number): Promise<Partial<ScaleRow>>
}

const round = (n: number) => Math.round(n * 100) / 100
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * scaleBenchmark measures CSR-mode registrations (fresh connection each) against the bridge with one process
 * (in-memory state), one process on Redis, N workers on Redis, one process on Redis with the registry in
 * PostgreSQL, plain Aedes and mosquitto, with each server's CPU time read from its processes' own counters
 * (/proc/<pid>/stat) before and after the measured run, and what the bridge asked of its stores meanwhile:
 * Redis commands (INFO commandstats), PostgreSQL statements and commits (pg_stat_statements, pg_stat_database)
 * and its own sync calls (under strace, when installed; --seccomp-bpf stops it only at those calls).
 */
export async function scaleBenchmark(
  bench: BenchPki,
  options: {
    concurrency: number
    /** A lower concurrency at which the latency shared state adds is measured too (memory, Redis, PostgreSQL). */
    lowConcurrency?: number
    durationMs: number
    workers?: number
    countSyncs?: boolean
  },
): Promise<ScaleResult> {
  const devices: Device[] = await Promise.all(
    bench.devices.map(async (d) => {
      const keys = await generateKey('ECDSA-P256')
      return { ...d, csr: buildCsr(d.id, keys.privateKey, keys.publicKey) }
    }),
  )
  const redis = await startRedis()
  const redisStats = redisCommandStats(redis.url)
  const traced = options.countSyncs !== false && straceAvailable()
  const traces = await mkdtemp(join(tmpdir(), 'mrb-bench-syncs-'))
  let bridges = 0
  const bridge = (sets: string[] = []) =>
    startBridge(
      bench.pki.stateDir,
      sets,
      traced ? { syncTrace: join(traces, `bridge-${++bridges}.strace`) } : {},
    )
  const workers = options.workers ?? availableParallelism()
  const low = options.lowConcurrency
  const rows: ScaleRow[] = []
  const redisProbe = (): Probe => {
    let before: Counts = {}
    return {
      before: async () => {
        before = await redisStats.snapshot()
      },
      after: async (n) => ({ redis: perRegistration(difference(await redisStats.snapshot(), before), n) }),
    }
  }
  const measure = async (
    label: string,
    processes: number,
    target: Target,
    concurrency = options.concurrency,
    probes: Probe[] = [],
  ): Promise<void> => {
    try {
      await closedLoop(target, devices, concurrency, options.durationMs / 5, 'csr') // warm-up
      for (const p of probes) await p.before()
      const from = Date.now()
      const cpuBefore = serverCpuMs(target.pids)
      const result = await closedLoop(target, devices, concurrency, options.durationMs, 'csr')
      const cpu = serverCpuMs(target.pids) - cpuBefore
      const to = Date.now()
      const summary = summarize(result.latencies, result.seconds)
      const n = Math.max(1, summary.count)
      let extra: Partial<ScaleRow> = {}
      for (const p of probes) extra = { ...extra, ...(await p.after(summary.count)) }
      if (target.syncTrace || probes.some((p) => p.afterStop)) {
        // strace writes its record out, and PostgreSQL's backends their counters, when the bridge stops
        await target.stop()
        for (const p of probes) if (p.afterStop) extra = { ...extra, ...(await p.afterStop(summary.count)) }
        if (target.syncTrace) {
          const syncs = await countSyncs(target.syncTrace, from, to)
          // per file to a thousandth: SQLite's checkpoints sync the database file a few times a thousand
          const byFile = Object.fromEntries(
            Object.entries(syncs.byFile).map(([f, c]) => [f, Math.round((c / n) * 1000) / 1000]),
          )
          extra = { ...extra, syncsPerRegistration: round(syncs.total / n), syncsByFile: byFile }
        }
      }
      const row: ScaleRow = {
        server: label,
        workers: processes,
        concurrency,
        failures: result.failures,
        cpuMsPerRegistration: round(cpu / n),
        ...summary,
        ...extra,
      }
      rows.push(row)
      const counted = [
        row.syncsPerRegistration !== undefined ? `${row.syncsPerRegistration} syncs` : '',
        row.redis ? `${row.redis.perRegistration} Redis commands` : '',
        row.postgres ? `${row.postgres.perRegistration} PostgreSQL statements` : '',
      ].filter(Boolean)
      process.stderr.write(
        `scale ${label} c=${row.concurrency}: ${row.perSecond}/s p50 ${row.p50} ms, ${row.cpuMsPerRegistration} ms CPU${counted.map((c) => `, ${c}`).join('')} each\n`,
      )
    } finally {
      await target.stop()
    }
  }
  try {
    // the default registry (SQLite): its syncs at 1 concurrent (one each) and under load (shared), each its own run
    await measure('bridge (memory)', 1, await bridge(), 1)
    await measure('bridge (memory)', 1, await bridge())
    const shared = [`state.redis.url=${redis.url}`]
    await measure('bridge (Redis)', 1, await bridge([...shared, 'state.workers=1']), undefined, [
      redisProbe(),
    ])
    if (low !== undefined) {
      await measure('bridge (memory)', 1, await bridge(), low)
      await measure('bridge (Redis)', 1, await bridge([...shared, 'state.workers=1']), low)
    }
    await measure(
      `bridge (Redis, ${workers} workers)`,
      workers,
      await bridge([...shared, `state.workers=${workers}`]),
      undefined,
      [redisProbe()],
    )
    await measurePostgres(shared)
    await measure('aedes', 1, await startAedesEcho(bench.pki.dir))
    await measure('mosquitto', 1, await startMosquittoEcho(bench.pki.dir))
  } finally {
    redisStats.close()
    await redis.stop()
    await rm(traces, { recursive: true, force: true })
  }

  /** measurePostgres: one process on Redis with the registry in PostgreSQL (fsync on, statements counted). */
  async function measurePostgres(shared: string[]): Promise<void> {
    const postgres = await startPostgres(['fsync=on', 'shared_preload_libraries=pg_stat_statements'])
    try {
      const stats = await postgresStatementStats(postgres.url)
      let statements: Counts = {}
      let commits = 0
      let counted: Counts = {}
      const probe: Probe = {
        before: async () => {
          await sleep(11_000) // the warm-up's commits reach pg_stat_database (see postgresStatementStats)
          statements = await stats.snapshot()
          commits = await stats.commits()
        },
        after: async () => {
          counted = difference(await stats.snapshot(), statements)
          return {}
        },
        afterStop: async (n) => {
          await stats.clientsGone()
          const committed = (await stats.commits()) - commits
          return {
            postgres: { ...perRegistration(counted, n), commitsPerRegistration: round(committed / n) },
          }
        },
      }
      try {
        await measure(
          'bridge (Redis + PostgreSQL)',
          1,
          await bridge([...shared, 'state.workers=1', `state.postgres.url=${postgres.url}`]),
          undefined,
          [redisProbe(), probe],
        )
      } finally {
        await stats.close()
      }
      if (low !== undefined) {
        const sets = [...shared, 'state.workers=1', `state.postgres.url=${postgres.url}`]
        await measure('bridge (Redis + PostgreSQL)', 1, await bridge(sets), low)
      }
    } finally {
      await postgres.stop()
    }
  }

  const p50 = (server: string, concurrency = options.concurrency) =>
    rows.find((r) => r.server === server && r.concurrency === concurrency)?.p50 ?? Number.NaN
  const added = (server: string, concurrency?: number) =>
    round(p50(server, concurrency) - p50('bridge (memory)', concurrency))
  return {
    cores: availableParallelism(),
    rows,
    sharedStateP50Ms: added('bridge (Redis)'),
    ...(low === undefined
      ? {}
      : {
          sharedStateLow: {
            concurrency: low,
            redisP50Ms: added('bridge (Redis)', low),
            postgresP50Ms: added('bridge (Redis + PostgreSQL)', low),
          },
        }),
    syncsCounted: traced,
  }
}

/** statement shortens a normalised SQL statement to its verb and table ("INSERT INTO devices"). */
const statement = (sql: string): string =>
  /^(SELECT .*? FROM \w+|INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+)/i
    .exec(sql)?.[1]
    ?.replace(/^SELECT .*? FROM/i, 'SELECT … FROM') ?? sql.split(' ').slice(0, 3).join(' ')

/** scaleMarkdown renders the section of docs/benchmarks.md, with the rate per core the CPU figures imply. */
export function scaleMarkdown(
  s: ScaleResult,
  table: (head: string[], rows: (string | number)[][]) => string,
): string[] {
  const aedes = s.rows.find((r) => r.server === 'aedes')
  const bridge = s.rows.find((r) => r.server === 'bridge (Redis)')
  const perCore = (r: ScaleRow | undefined) => (r ? Math.round(1000 / r.cpuMsPerRegistration) : Number.NaN)
  const concurrency = aedes?.concurrency ?? s.rows.at(-1)?.concurrency ?? '?'
  const dash = (n: number | undefined) => n ?? '—'
  const postgresCell = (r: ScaleRow) =>
    r.postgres ? `${r.postgres.perRegistration} (${r.postgres.commitsPerRegistration} commits)` : '—'
  const top = (w: WireCount, name: (n: string) => string = (n) => n) =>
    w.top.map((t) => `${name(t.name)} ${t.perRegistration}`).join(', ')
  const named = (r: ScaleRow) => `${r.server}, ${r.concurrency} concurrent`
  const details = [
    ...s.rows
      .filter((r) => r.syncsByFile && Object.keys(r.syncsByFile).length)
      .map(
        (r) =>
          `- ${named(r)}: syncs by file ${Object.entries(r.syncsByFile ?? {})
            .map(([f, c]) => `${f} ${c}`)
            .join(', ')}`,
      ),
    ...s.rows.filter((r) => r.redis).map((r) => `- ${named(r)}: Redis ${top(r.redis as WireCount)}`),
    ...s.rows
      .filter((r) => r.postgres)
      .map((r) => `- ${named(r)}: PostgreSQL ${top(r.postgres as WireCount, statement)}`),
  ]
  const syncs = s.syncsCounted
    ? "*Syncs* are the bridge's own fsync, fdatasync and sync_file_range calls (every process and thread of it, counted by strace in the measured phase; strace stops the bridge only at those calls, through --seccomp-bpf): writes to files opened with O_DSYNC would not be counted (the registration path has none) and neither are PostgreSQL's own syncs, which happen in its server."
    : `*Syncs* were not counted (${s.syncsCounted === false ? 'strace is not installed, or --syncs=off' : 'not measured in this run'}).`
  return [
    '## Workers, replicas and server CPU per registration',
    '',
    `CSR mode, a fresh mutual-TLS connection per registration, ${concurrency} concurrent (and the default bridge also at 1 concurrent), on ${s.cores} cores shared with the load generator. CPU time is each server's own (user + system of all its processes, from /proc/<pid>/stat, workers included): the figure that stays meaningful when the load generator shares the machine. "memory" is the bridge's default: state in memory, the registry in SQLite; the Redis rows keep that registry, the last bridge row has it in PostgreSQL (fsync on).`,
    '',
    table(
      [
        'server',
        'processes',
        'concurrent',
        'registrations/s',
        'p50 ms',
        'p99 ms',
        'CPU ms / registration',
        'syncs / registration',
        'Redis commands / registration',
        'PostgreSQL statements / registration',
        'failures',
      ],
      s.rows.map((r) => [
        r.server,
        r.workers,
        r.concurrency,
        r.perSecond,
        r.p50,
        r.p99,
        r.cpuMsPerRegistration,
        dash(r.syncsPerRegistration),
        dash(r.redis?.perRegistration),
        postgresCell(r),
        r.failures,
      ]),
    ),
    '',
    `What crosses the wire and what is made durable, per registration, counted over the measured phase and divided by its registrations. ${syncs} *Redis commands* are every command Redis executed (INFO commandstats: leases, answers, rate limits, and Aedes' sessions and pub/sub for the MQTT side), from all the bridge's connections. *PostgreSQL statements* are every statement the registry ran (pg_stat_statements, BEGIN and COMMIT included); with the pg driver each is one round trip. *Commits* are the transactions PostgreSQL committed in the database (pg_stat_database.xact_commit: an autocommit statement counts one, a BEGIN … COMMIT block one; the counting connection's own few queries and autovacuum's are in it).`,
    '',
    ...(details.length ? ['The most frequent, per registration:', '', ...details, ''] : []),
    `Shared state (Redis on loopback) adds ${s.sharedStateP50Ms} ms to the median registration of one process at ${concurrency} concurrent${s.sharedStateLow ? `; at ${s.sharedStateLow.concurrency} concurrent, Redis adds ${s.sharedStateLow.redisP50Ms} ms and Redis with the registry in PostgreSQL ${s.sharedStateLow.postgresP50Ms} ms` : ''}.`,
    '',
    `On paper, from CPU time alone: one core serves about ${perCore(bridge)} registrations/s through the bridge on Redis (${perCore(aedes)}/s through plain Aedes), so with workers the rate grows with the cores given to the bridge until Redis, the issuer or the network saturates; the table's measured rates are lower because the load generator takes its share of the same cores.`,
    '',
  ]
}

/** scaleGoals checks the scale-out goals: CPU per registration against one process in memory, and added latency. */
export function scaleGoals(s: ScaleResult | undefined): { goal: string; measured: string; met: boolean }[] {
  if (!s) return []
  const main = Math.max(...s.rows.map((r) => r.concurrency))
  const memory = s.rows.find((r) => r.server === 'bridge (memory)' && r.concurrency === main)
  const ratio = (server: string) => {
    const row = s.rows.find((r) => r.server.startsWith(server) && r.concurrency === main)
    return row && memory
      ? { row, x: round(row.cpuMsPerRegistration / memory.cpuMsPerRegistration) }
      : undefined
  }
  const out: { goal: string; measured: string; met: boolean }[] = []
  const cpu = (server: string, label: string, limit: number) => {
    const r = ratio(server)
    if (r && memory)
      out.push({
        goal: `CPU per registration, ${label} ≤ ${limit} × one process in memory`,
        measured: `${r.x} × (${r.row.cpuMsPerRegistration} against ${memory.cpuMsPerRegistration} ms, ${memory.concurrency} concurrent)`,
        met: r.x <= limit,
      })
  }
  cpu('bridge (Redis + PostgreSQL)', 'Redis + PostgreSQL', 1.2)
  cpu('bridge (Redis, ', 'two workers on Redis', 1.25)
  const low = s.sharedStateLow
  if (low)
    out.push({
      goal: `median latency added by shared state ≤ 10 ms at ${low.concurrency} concurrent`,
      measured: `Redis ${low.redisP50Ms} ms, Redis + PostgreSQL ${low.postgresP50Ms} ms`,
      met: Math.max(low.redisP50Ms, low.postgresP50Ms) <= 10,
    })
  return out
}
