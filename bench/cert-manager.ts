import { Worker } from 'node:worker_threads'
import { openTestPki } from '../test/support/pki.js'
import { type Device, openDevice } from './lib/load.js'
import { makeDevices } from './lib/pki.js'
import { startBridge } from './lib/servers.js'
import { type Summary, summarize } from './lib/stats.js'

/** CertManagerResult is the cert-manager path measured through the API and cert-manager emulation. */
export interface CertManagerResult {
  readonly concurrent: number
  readonly issuanceDelayMs: number
  readonly rounds: number
  readonly registrationsPerSecond: number
  /** publish-to-answer latency minus the time the emulated cert-manager took (Certificate created to Ready). */
  readonly added: Summary
  readonly writesPerRegistration: number
  /** The emulated cert-manager's own writes per registration, under its 20 QPS / 50 burst client limit. */
  readonly controllerWritesPerRegistration: number
  readonly requestsPerRegistration: number
  readonly watchConnections: Record<string, number>
  readonly failures: number
}

type WorldMessage =
  | { kind: 'ready'; kubeconfig: string; stateDir: string }
  | { kind: 'certificate'; name: string; event: 'added' | 'ready'; at: number }
  | {
      kind: 'stats'
      total: number
      writes: number
      watches: Record<string, number>
      controllerWrites: number
    }
  | { kind: 'empty' | 'closed' }

/** World drives the emulated cluster in its worker thread. */
function startWorld(issuanceDelayMs: number) {
  const worker = new Worker(new URL('./servers/kube-world.js', import.meta.url), {
    workerData: { issuanceDelayMs },
  })
  const added = new Map<string, number>()
  const took = new Map<string, number>()
  const waiting = new Map<string, (m: WorldMessage) => void>()
  worker.on('message', (m: WorldMessage) => {
    if (m.kind === 'certificate') {
      if (m.event === 'added') added.set(m.name, m.at)
      else if (!took.has(m.name)) took.set(m.name, m.at - (added.get(m.name) ?? m.at))
      return
    }
    waiting.get(m.kind)?.(m)
  })
  const next = <K extends WorldMessage['kind']>(kind: K, send?: string) =>
    new Promise<Extract<WorldMessage, { kind: K }>>((resolve) => {
      waiting.set(kind, resolve as (m: WorldMessage) => void)
      if (send) worker.postMessage(send)
    })
  return { worker, took, next }
}

/**
 * certManagerBenchmark runs rounds of `concurrent` simultaneous registrations against a bridge (its own process)
 * on the cert-manager issuer; the API emulation and emulated cert-manager run in a worker thread. The devices
 * connect first and then all publish at once, so the latency measured is that of the issuance path.
 */
export async function certManagerBenchmark(options: {
  concurrent: number
  rounds: number
  issuanceDelayMs: number
}): Promise<CertManagerResult> {
  const world = startWorld(options.issuanceDelayMs)
  const { kubeconfig, stateDir } = await world.next('ready')
  const target = await startBridge(stateDir, [
    'issuer.type=cert-manager',
    'issuer.certManager.namespace=devices',
    'issuer.certManager.issuerRef.name=ca',
    `issuer.certManager.kubeconfig=${kubeconfig}`,
    'issuer.certManager.apiRequestsPerSecond=2000',
    'issuer.certManager.apiBurst=2000',
    'issuer.certManager.apiMaxConcurrent=128',
  ])
  try {
    const pki = openTestPki(stateDir)
    const devices: Device[] = await makeDevices(pki, options.concurrent, 'cm-')
    const added: number[] = []
    let failures = 0
    const started = performance.now()
    for (let round = 0; round < options.rounds; round++) {
      world.took.clear()
      // connect everyone first: what is measured is the issuance path, not a burst of TLS handshakes
      const open = await Promise.all(devices.map((d) => openDevice(target, d)))
      const outcomes = await Promise.all(open.map((d) => d.register().catch(() => undefined)))
      for (const d of open) d.end()
      outcomes.forEach((o, i) => {
        const took = world.took.get(`dev-${devices[i]?.id}`)
        if (o?.status === 'issued' && took !== undefined) added.push(o.replyMs - took)
        else failures++
      })
      await world.next('empty', 'empty') // clean-up done: the next round starts from an empty namespace
    }
    const seconds = (performance.now() - started) / 1000
    const stats = await world.next('stats', 'stats')
    const registrations = Math.max(1, added.length)
    const result: CertManagerResult = {
      concurrent: options.concurrent,
      issuanceDelayMs: options.issuanceDelayMs,
      rounds: options.rounds,
      registrationsPerSecond: Math.round((added.length / seconds) * 10) / 10,
      added: summarize(added, seconds),
      writesPerRegistration: Math.round((stats.writes / registrations) * 100) / 100,
      controllerWritesPerRegistration: Math.round((stats.controllerWrites / registrations) * 100) / 100,
      requestsPerRegistration: Math.round((stats.total / registrations) * 100) / 100,
      watchConnections: stats.watches,
      failures,
    }
    process.stderr.write(
      `cert-manager ${options.concurrent} concurrent: added p50 ${result.added.p50} ms p99 ${result.added.p99} ms, ${result.writesPerRegistration} writes/registration (cert-manager: ${result.controllerWritesPerRegistration} at 20 QPS), ${result.registrationsPerSecond}/s, watches ${JSON.stringify(result.watchConnections)}\n`,
    )
    return result
  } finally {
    await target.stop()
    await world.next('closed', 'close')
    await world.worker.terminate()
  }
}
