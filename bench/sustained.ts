import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Device, registerOnce } from './lib/load.js'
import type { BenchPki } from './lib/pki.js'
import { rssKb } from './lib/rss.js'
import { startBridge } from './lib/servers.js'
import { percentile } from './lib/stats.js'

/** SustainedResult: a steady open-loop rate, windowed p99 and RSS over time, and exactly-one-answer accounting. */
export interface SustainedResult {
  readonly total: number
  readonly ratePerSecond: number
  readonly issued: number
  readonly failures: number
  readonly auditLines: number
  readonly windows: { second: number; p99: number; count: number }[]
  readonly rssMb: { second: number; rssMb: number }[]
}

/** sustainedBenchmark sends `total` registrations at `rate` per second (open loop) and watches p99 and RSS. */
export async function sustainedBenchmark(
  bench: BenchPki,
  options: { total: number; rate: number; windowSeconds: number },
): Promise<SustainedResult> {
  const target = await startBridge(bench.pki.stateDir, ['registration.replyCacheSeconds=60'])
  const pid = target.pids[0] ?? 0
  const auditFile = join(bench.pki.stateDir, 'audit.log')
  const auditBefore = (await readFile(auditFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).length
  const done: { at: number; ms: number }[] = []
  const rss: SustainedResult['rssMb'] = []
  let failures = 0
  let issued = 0
  const started = performance.now()
  const sampler = setInterval(
    () =>
      rss.push({
        second: Math.round((performance.now() - started) / 1000),
        rssMb: Math.round(rssKb(pid) / 1024),
      }),
    1000,
  )
  try {
    const inFlight: Promise<void>[] = []
    for (let i = 0; i < options.total; i++) {
      const due = started + (i * 1000) / options.rate
      const wait = due - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      const device = bench.devices[i % bench.devices.length] as Device
      inFlight.push(
        registerOnce(target, device, 'server-key').then(
          (o) => {
            if (o.status === 'issued') issued++
            else failures++
            done.push({ at: performance.now() - started, ms: o.ms })
          },
          () => {
            failures++
          },
        ),
      )
    }
    await Promise.all(inFlight)
  } finally {
    clearInterval(sampler)
    await target.stop()
  }
  const auditLines = (await readFile(auditFile, 'utf8')).split('\n').filter(Boolean).length - auditBefore
  const windows: SustainedResult['windows'] = []
  for (let w = 0; w * options.windowSeconds * 1000 < (done.at(-1)?.at ?? 0); w++) {
    const inWindow = done
      .filter(
        (d) => d.at >= w * options.windowSeconds * 1000 && d.at < (w + 1) * options.windowSeconds * 1000,
      )
      .map((d) => d.ms)
      .sort((a, b) => a - b)
    if (inWindow.length)
      windows.push({
        second: w * options.windowSeconds,
        p99: Math.round(percentile(inWindow, 99) * 10) / 10,
        count: inWindow.length,
      })
  }
  process.stderr.write(
    `sustained ${options.total} at ${options.rate}/s: ${issued} issued, ${failures} failed, ${auditLines} audited; p99 by window ${windows.map((w) => w.p99).join(', ')} ms; RSS ${rss.map((r) => r.rssMb).join(' ')} MiB\n`,
  )
  return {
    total: options.total,
    ratePerSecond: options.rate,
    issued,
    failures,
    auditLines,
    windows,
    rssMb: rss,
  }
}
