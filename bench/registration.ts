import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildCsr } from '../src/pki/csr-builder.js'
import { generateKey } from '../src/pki/keys.js'
import { AWS_TEMPLATES } from './lib/aws-load.js'
import { closedLoop, type Device, type LoadMode } from './lib/load.js'
import type { BenchPki } from './lib/pki.js'
import { startAedesEcho, startBridge, startMosquittoEcho, type Target } from './lib/servers.js'
import { ratio, type Summary, summarize } from './lib/stats.js'

/** RegistrationRow is one measured configuration. */
export interface RegistrationRow extends Summary {
  readonly target: string
  readonly mode: LoadMode | 'echo'
  readonly concurrency: number
  readonly failures: number
}

/** RegistrationResult holds the rows and the ratios the goals are about. */
export interface RegistrationResult {
  readonly rows: RegistrationRow[]
  /** Per concurrency: bridge (server-key and CSR) rate over bare Aedes and over mosquitto. */
  readonly ratios: { concurrency: number; mode: string; vsAedes: number; vsMosquitto: number }[]
}

async function withDevicesCsrs(bench: BenchPki): Promise<Device[]> {
  return Promise.all(
    bench.devices.map(async (d) => {
      const keys = await generateKey('ECDSA-P256')
      const csr = buildCsr(d.id, keys.privateKey, keys.publicKey)
      return { ...d, csr, csrDer: Buffer.from(csr.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64') }
    }),
  )
}

/** registrationBenchmark measures fresh-connection registrations against the bridge and two bare brokers. */
export async function registrationBenchmark(
  bench: BenchPki,
  options: { concurrencies: number[]; durationMs: number; bridgeSets?: string[] },
): Promise<RegistrationResult> {
  const devices = await withDevicesCsrs(bench)
  const rows: RegistrationRow[] = []
  const measure = async (target: Target, modes: RegistrationRow['mode'][]) => {
    try {
      for (const mode of modes) {
        for (const concurrency of options.concurrencies) {
          const loadMode = mode === 'echo' ? 'server-key' : mode
          await closedLoop(target, devices, concurrency, options.durationMs / 5, loadMode) // warm-up
          const result = await closedLoop(target, devices, concurrency, options.durationMs, loadMode)
          const row = {
            target: target.name,
            mode,
            concurrency,
            failures: result.failures,
            ...summarize(result.latencies, result.seconds),
          }
          rows.push(row)
          process.stderr.write(
            `registration ${row.target} ${row.mode} c=${concurrency}: ${row.perSecond}/s p50 ${row.p50} ms p99 ${row.p99} ms${row.failures ? ` (${row.failures} failed)` : ''}\n`,
          )
        }
      }
    } finally {
      await target.stop()
    }
  }
  // csr-cbor: the CSR mode in CBOR (the /cbor topics, the CSR and the certificates as DER); aws-csr: the AWS
  // fleet-provisioning CSR flow (CreateCertificateFromCsr then RegisterThing, each answer waiting for the CRL)
  const templates = join(bench.pki.stateDir, 'aws-templates.yaml')
  await writeFile(templates, AWS_TEMPLATES)
  const sets = ['aws.enabled=true', `aws.templatesFile=${templates}`, ...(options.bridgeSets ?? [])]
  await measure(await startBridge(bench.pki.stateDir, sets), ['server-key', 'csr', 'csr-cbor', 'aws-csr'])
  await measure(await startAedesEcho(bench.pki.dir), ['echo'])
  await measure(await startMosquittoEcho(bench.pki.dir), ['echo'])
  const rate = (target: string, mode: string, c: number) =>
    rows.find((r) => r.target === target && r.mode === mode && r.concurrency === c)?.perSecond ?? Number.NaN
  const ratios = options.concurrencies.flatMap((c) =>
    (['server-key', 'csr'] as const).map((mode) => ({
      concurrency: c,
      mode,
      vsAedes: ratio(rate('bridge', mode, c), rate('aedes', 'echo', c)),
      vsMosquitto: ratio(rate('bridge', mode, c), rate('mosquitto', 'echo', c)),
    })),
  )
  return { rows, ratios }
}
