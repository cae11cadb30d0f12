import { randomUUID } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connectTls, type DeviceTls } from '../src/client/register.js'
import { registerDevices } from '../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../src/pki/dev-pki.js'
import { registerOnce } from './lib/load.js'
import { type BenchDevice, type BenchPki, makeDevices } from './lib/pki.js'
import { startBridge, type Target } from './lib/servers.js'
import { ratio } from './lib/stats.js'

/** GatewayRow is one way of registering the same sensors. */
export interface GatewayRow {
  readonly mode: 'gateway' | 'own connections'
  /** Devices per batch message (gateway), or registrations in flight at once (own connections). */
  readonly batchSize?: number
  readonly concurrency?: number
  readonly sensors: number
  readonly seconds: number
  readonly perSecond: number
  readonly failures: number
}

/** GatewayResult holds the rows and each batch size's rate over the own-connection rate. */
export interface GatewayResult {
  readonly rows: GatewayRow[]
  readonly vsOwnConnections: { batchSize: number; ratio: number }[]
}

const round = (n: number): number => Math.round(n * 100) / 100

async function throughGateway(target: Target, gateway: DeviceTls, sensors: BenchDevice[], batchSize: number) {
  const client = await connectTls(target.url, gateway)
  try {
    const started = performance.now()
    const outcomes = await registerDevices({
      url: target.url,
      ...gateway,
      client,
      identity: 'gateway-001',
      requestId: randomUUID(),
      batchSize,
      devices: sensors.map((s) => ({ deviceId: s.id, keyAlgorithm: 'ECDSA-P256' as const })),
    })
    const seconds = (performance.now() - started) / 1000
    return { seconds, failures: outcomes.filter((o) => o.status !== 'issued').length }
  } finally {
    await client.endAsync(true)
  }
}

async function ownConnections(target: Target, sensors: BenchDevice[], concurrency: number) {
  const started = performance.now()
  let next = 0
  let failures = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < sensors.length; i = next++) {
      const outcome = await registerOnce(target, sensors[i] as BenchDevice, 'server-key').catch(
        () => undefined,
      )
      if (outcome?.status !== 'issued') failures++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { seconds: (performance.now() - started) / 1000, failures }
}

/**
 * gatewayBenchmark registers the same sensors (server-side ECDSA P-256 keys, embedded CA) through one gateway
 * connection in batches of each size, and each over its own fresh mutual-TLS connection, in the same run.
 */
export async function gatewayBenchmark(
  bench: BenchPki,
  options: { sensors: number; batchSizes: number[]; concurrency: number },
): Promise<GatewayResult> {
  const sensors = await makeDevices(bench.pki, options.sensors, 'bench-sensor-')
  const policy = join(bench.pki.stateDir, 'bench-gateways.yaml')
  await writeFile(
    policy,
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["bench-sensor-*"] }\n' +
      '    quota: { maxDevices: 1000000, perMinute: 100000000, burst: 1000000 }\n',
  )
  const gatewayFiles = bench.pki.device('gateway-001')
  const gateway: DeviceTls = {
    certPem: await readFile(gatewayFiles.certFile, 'utf8'),
    keyPem: await readFile(gatewayFiles.keyFile, 'utf8'),
    caPem: await readFile(bench.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
  }
  const target = await startBridge(bench.pki.stateDir, [
    `gateways.policyFile=${policy}`,
    `gateways.maxDevicesPerBatch=${Math.max(...options.batchSizes)}`,
    `registration.replyCacheMaxEntries=${options.sensors * 2}`,
  ])
  const rows: GatewayRow[] = []
  const push = (row: Omit<GatewayRow, 'perSecond' | 'seconds'>, seconds: number): void => {
    const full = { ...row, seconds: round(seconds), perSecond: round(row.sensors / seconds) }
    rows.push(full)
    process.stderr.write(
      `gateway ${full.mode} ${full.batchSize ?? `c=${full.concurrency}`}: ${full.perSecond}/s (${full.failures} failed)\n`,
    )
  }
  try {
    await throughGateway(target, gateway, sensors.slice(0, 10), 10) // warm-up
    for (const batchSize of options.batchSizes) {
      const r = await throughGateway(target, gateway, sensors, batchSize)
      push({ mode: 'gateway', batchSize, sensors: sensors.length, failures: r.failures }, r.seconds)
    }
    const own = await ownConnections(target, sensors, options.concurrency)
    push(
      {
        mode: 'own connections',
        concurrency: options.concurrency,
        sensors: sensors.length,
        failures: own.failures,
      },
      own.seconds,
    )
  } finally {
    await target.stop()
  }
  const ownRate = rows.at(-1)?.perSecond ?? Number.NaN
  return {
    rows,
    vsOwnConnections: options.batchSizes.map((b) => ({
      batchSize: b,
      ratio: ratio(rows.find((r) => r.batchSize === b)?.perSecond ?? Number.NaN, ownRate),
    })),
  }
}

/** gatewayMarkdown is the report section of the gateway benchmark. */
export function gatewayMarkdown(
  result: GatewayResult,
  table: (head: string[], rows: (string | number)[][]) => string,
): string[] {
  return [
    '## Gateway batches',
    '',
    `The same ${result.rows[0]?.sensors ?? 0} sensors registered (embedded CA, server-side ECDSA P-256 keys) through one gateway connection with the \`gateway/1\` extension, in batches of each size, and each sensor over its own fresh mutual-TLS connection (${result.rows.at(-1)?.concurrency ?? 0} at a time), in the same run.`,
    '',
    table(
      ['how', 'batch size / concurrent', 'sensors/s', 'seconds', 'failures'],
      result.rows.map((r) => [
        r.mode,
        r.batchSize ?? r.concurrency ?? '',
        r.perSecond,
        r.seconds,
        r.failures,
      ]),
    ),
    '',
    `Gateway rate over own-connection rate: ${result.vsOwnConnections.map((v) => `batch ${v.batchSize}: ${v.ratio}×`).join(', ')}.`,
    '',
  ]
}
