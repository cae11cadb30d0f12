import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { certManagerBenchmark } from './cert-manager.js'
import { gatewayBenchmark } from './gateway.js'
import { issuanceBenchmark } from './issuance.js'
import { createBenchPki } from './lib/pki.js'
import { memoryBenchmark } from './memory.js'
import { registrationBenchmark } from './registration.js'
import { markdown, type Results, registrationChart } from './report.js'
import { scaleBenchmark } from './scale.js'
import { sustainedBenchmark } from './sustained.js'

/**
 * npm run bench [-- --smoke] [--only=issuance,registration,memory,cert-manager,sustained,gateway,scale]
 *   [--connections=1000,5000,10000] [--duration=5000] [--sustained=10000] [--rate=200] [--metrics=off] [--syncs=off]
 * A full run takes a few minutes and rewrites docs/benchmarks.md; --smoke runs each benchmark for about a
 * second, to check they work, and writes its report to a temporary directory.
 */
const args = process.argv.slice(2)
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const numbers = (name: string, fallback: number[]): number[] => flag(name)?.split(',').map(Number) ?? fallback
const smoke = args.includes('--smoke')
const only = flag('only')?.split(',')
const wanted = (name: string): boolean => !only || only.includes(name)
const duration = Number(flag('duration') ?? (smoke ? 150 : 5000))

const mosquittoVersion =
  (spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0]?.trim() ?? 'mosquitto'
const results: Results = {
  machine: {
    date: new Date().toISOString().slice(0, 10),
    cpus: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `Linux ${release()}`,
    node: process.versions.node,
    mosquitto: mosquittoVersion,
  },
}
const mutable = results as { -readonly [K in keyof Results]: Results[K] }
// --report-only re-renders docs/benchmarks.md from docs/benchmarks.json, measuring nothing
if (args.includes('--report-only')) {
  const { readFile } = await import('node:fs/promises')
  const docsDir = new URL('../../docs/', import.meta.url).pathname
  const saved = JSON.parse(await readFile(join(docsDir, 'benchmarks.json'), 'utf8')) as Results
  await writeFile(join(docsDir, 'benchmarks.md'), markdown(saved))
  if (saved.registration)
    await writeFile(join(docsDir, 'benchmarks', 'registration.svg'), registrationChart(saved.registration))
  process.exit(0)
}
if (wanted('issuance')) mutable.issuance = await issuanceBenchmark({ durationMs: smoke ? 150 : 3000 })
const needsDevices =
  wanted('registration') || wanted('memory') || wanted('sustained') || wanted('gateway') || wanted('scale')
const bench = needsDevices ? await createBenchPki(smoke ? 64 : 1000) : undefined
if (bench && wanted('registration'))
  mutable.registration = await registrationBenchmark(bench, {
    concurrencies: numbers('concurrency', smoke ? [1, 4] : [1, 16, 64]),
    durationMs: duration,
    // --metrics=off runs the bridge with health.metrics=false, to measure what metrics cost
    bridgeSets: flag('metrics') === 'off' ? ['health.metrics=false'] : [],
  })
if (bench && wanted('memory'))
  mutable.memory = await memoryBenchmark(bench, {
    sizes: numbers('connections', smoke ? [50, 100] : [1000, 5000, 10000]),
  })
if (wanted('cert-manager'))
  mutable.certManager = await certManagerBenchmark({
    concurrent: smoke ? 10 : 100,
    rounds: smoke ? 1 : 2,
    issuanceDelayMs: 100,
    arrivalMs: smoke ? 100 : 1000,
  })
if (bench && wanted('sustained')) {
  mutable.sustained = await sustainedBenchmark(bench, {
    total: Number(flag('sustained') ?? (smoke ? 100 : 10_000)),
    rate: Number(flag('rate') ?? 200),
    windowSeconds: smoke ? 1 : 10,
  })
}
if (bench && wanted('gateway'))
  mutable.gateway = await gatewayBenchmark(bench, {
    sensors: smoke ? 20 : 1000,
    batchSizes: smoke ? [1, 10] : [1, 10, 100],
    concurrency: 16,
  })

// workers and replicas: 1 and N processes beside Aedes and mosquitto, with each server's own CPU time
if (bench && wanted('scale'))
  mutable.scale = await scaleBenchmark(bench, {
    concurrency: smoke ? 4 : 64,
    lowConcurrency: smoke ? 2 : 16,
    durationMs: duration,
    // --syncs=off runs the bridge without strace (which counts its syncs), to measure what strace costs
    countSyncs: flag('syncs') !== 'off',
  })

const docs = smoke
  ? await mkdtemp(join(tmpdir(), 'mrb-bench-smoke-'))
  : new URL('../../docs/', import.meta.url).pathname
await mkdir(join(docs, 'benchmarks'), { recursive: true })
if (!smoke && only) {
  // a partial run (--only) keeps the other sections of the last full run
  const { readFile } = await import('node:fs/promises')
  const previous = JSON.parse(
    await readFile(join(docs, 'benchmarks.json'), 'utf8').catch(() => '{}'),
  ) as Results
  for (const [key, value] of Object.entries(previous)) {
    if (!(key in mutable)) (mutable as Record<string, unknown>)[key] = value
  }
}
await writeFile(join(docs, 'benchmarks.json'), `${JSON.stringify(results, null, 2)}\n`)
if (results.registration)
  await writeFile(join(docs, 'benchmarks', 'registration.svg'), registrationChart(results.registration))
await writeFile(join(docs, 'benchmarks.md'), markdown(results))
process.stderr.write(`wrote ${join(docs, 'benchmarks.md')}\n`)
