import { Worker } from 'node:worker_threads'
import { openTestPki } from '../test/support/pki.js'
import { type Device, openDevice } from './lib/load.js'
import { makeDevices } from './lib/pki.js'
import { startBridge } from './lib/servers.js'
import { type Summary, summarize } from './lib/stats.js'

type Verbs = Record<string, number>
type ControllerRequests = Record<'kube' | 'certManager', Record<'create' | 'update' | 'delete', number>>

/**
 * CertManagerResult is the cert-manager path measured through the API and cert-manager emulation (the fields
 * marked optional are absent from results measured before 2026-12, when the emulation was not yet fair).
 */
export interface CertManagerResult {
  readonly concurrent: number
  readonly issuanceDelayMs: number
  readonly rounds: number
  readonly registrationsPerSecond: number
  /** The device's publish-to-answer latency. */
  readonly registration?: Summary
  /** The emulated cert-manager's part of it: the Certificate created to Ready (its rate limit and delay included). */
  readonly certManager?: Summary
  /** publish-to-answer latency minus the time the emulated cert-manager took (Certificate created to Ready). */
  readonly added: Summary
  /** The two halves of `added`: the device's publish to the Certificate created at the API server ... */
  readonly toCreated?: Summary
  /** ... and the Certificate Ready at the API server to the answer at the device. */
  readonly fromReady?: Summary
  /** The bridge's API writes (create, update, patch, delete, by its service account) per registration. */
  readonly writesPerRegistration: number
  /** The bridge's API requests per registration, by verb (watches and the informers' lists included). */
  readonly bridgeRequestsPerRegistration?: Verbs
  /** The bridge's requests the API server refused (4xx, 5xx). */
  readonly bridgeRefused?: number
  /** The emulated cert-manager's API requests per registration (all writes; each spent a token at 20 QPS / 50 burst). */
  readonly controllerRequestsPerRegistration?: number
  /** The bridge's watch connections opened over the run, and open at its end, per resource. */
  readonly watchConnections: Record<string, number>
  readonly watchConnectionsOpen?: Record<string, number>
  /** The event-loop delay of the thread that runs the API server and the emulated cert-manager. */
  /** How long the API server took to answer the bridge's creates (arrival to answer, in its own thread). */
  readonly apiServerCreateMs?: { p50: number; p99: number; max: number }
  readonly apiServerLoopDelayMs?: { p50: number; p99: number; max: number }
  readonly failures: number
  /** How the measured rounds' publishes arrived: spread evenly over `arrivalMs` (0: all at once). */
  readonly arrivalMs?: number
  /** The same added time in one round whose devices all publish at once, after the measured rounds. */
  readonly burst?: { readonly added: Summary; readonly toCreated: Summary }
  /** The added time in the first round (connections to the API server opened, code not yet optimised); not counted. */
  readonly warmUp?: Summary
}

type WorldMessage =
  | { kind: 'ready'; kubeconfig: string; stateDir: string; issuerSets: string[] }
  | { kind: 'certificate'; name: string; event: 'added' | 'ready'; at: number }
  | {
      kind: 'stats'
      bridgeVerbs: Verbs
      bridgeRefused: number
      others: number
      watchesOpened: Record<string, number>
      watchesOpen: Record<string, number>
      controller: ControllerRequests
      loopDelayMs: { p50: number; p99: number; max: number }
      createMs: { p50: number; p99: number; max: number }
    }
  | { kind: 'empty' | 'closed' }

/** World drives the emulated cluster in its worker thread. */
function startWorld(issuanceDelayMs: number) {
  const worker = new Worker(new URL('./servers/kube-world.js', import.meta.url), {
    workerData: { issuanceDelayMs },
  })
  const added = new Map<string, number>()
  const ready = new Map<string, number>()
  const took = new Map<string, number>()
  const waiting = new Map<string, (m: WorldMessage) => void>()
  worker.on('message', (m: WorldMessage) => {
    if (m.kind === 'certificate') {
      if (m.event === 'added') added.set(m.name, m.at)
      else if (!took.has(m.name)) {
        ready.set(m.name, m.at)
        took.set(m.name, m.at - (added.get(m.name) ?? m.at))
      }
      return
    }
    waiting.get(m.kind)?.(m)
  })
  const next = <K extends WorldMessage['kind']>(kind: K, send?: string) =>
    new Promise<Extract<WorldMessage, { kind: K }>>((resolve) => {
      waiting.set(kind, resolve as (m: WorldMessage) => void)
      if (send) worker.postMessage(send)
    })
  return { worker, added, ready, took, next }
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const perRegistration = (n: number, registrations: number): number =>
  Math.round((n / registrations) * 100) / 100

/**
 * certManagerBenchmark runs rounds of `concurrent` simultaneous registrations against a bridge (its own process,
 * with its default API limits: 50 QPS, burst 100) on the cert-manager issuer; the API emulation and emulated
 * cert-manager run in a worker thread. The devices connect first and then all publish at once, so the latency
 * measured is that of the issuance path. cert-manager at 20 QPS takes tens of seconds for 100 certificates
 * (about 8 API requests each), so the registration timeout is raised to 120 s: what is measured is the
 * bridge's part, not whether cert-manager keeps up with 30 s.
 */
export async function certManagerBenchmark(options: {
  concurrent: number
  rounds: number
  issuanceDelayMs: number
  /** The measured rounds' publishes spread evenly over this long (cert-manager takes tens of seconds for them). */
  arrivalMs: number
}): Promise<CertManagerResult> {
  const world = startWorld(options.issuanceDelayMs)
  const { kubeconfig, stateDir, issuerSets } = await world.next('ready')
  const target = await startBridge(stateDir, [
    'issuer.type=cert-manager',
    'issuer.certManager.namespace=devices',
    ...issuerSets,
    `issuer.certManager.kubeconfig=${kubeconfig}`,
    'registration.timeoutMs=120000',
  ])
  try {
    const pki = openTestPki(stateDir)
    const devices: Device[] = await makeDevices(pki, options.concurrent, 'cm-')
    const added: number[] = []
    const registration: number[] = []
    const certManager: number[] = []
    const before: number[] = []
    const after: number[] = []
    let failures = 0
    let measuredSeconds = 0
    /** round registers every device once, their publishes spread over `arrivalMs`; what it measured. */
    const round = async (label: string, arrivalMs: number) => {
      world.took.clear()
      world.ready.clear()
      // connect everyone first: what is measured is the issuance path, not a burst of TLS handshakes
      const open = await Promise.all(devices.map((d) => openDevice(target, d)))
      const started = performance.now()
      const outcomes = await Promise.all(
        open.map((d, i) =>
          wait((arrivalMs * i) / open.length)
            .then(() => d.register())
            .then((o) => ({ ...o, at: performance.timeOrigin + performance.now() }))
            .catch(() => undefined),
        ),
      )
      const seconds = (performance.now() - started) / 1000
      for (const d of open) d.end()
      const m = { added: [] as number[], registration: [] as number[], certManager: [] as number[] }
      const halves = { before: [] as number[], after: [] as number[] }
      let failed = 0
      outcomes.forEach((o, i) => {
        const name = `dev-${devices[i]?.id}`
        const took = world.took.get(name)
        if (o?.status === 'issued' && took !== undefined) {
          m.added.push(o.replyMs - took)
          m.registration.push(o.replyMs)
          m.certManager.push(took)
          // the same clock in both threads (time origin + monotonic time): the two halves of what was added
          halves.before.push((world.added.get(name) ?? 0) - (o.at - o.replyMs))
          halves.after.push(o.at - (world.ready.get(name) ?? 0))
        } else failed++
      })
      const r = (xs: number[]) => summarize(xs, 1)
      process.stderr.write(
        `cert-manager ${label} round (publishes over ${arrivalMs} ms): added p50 ${r(m.added).p50} p99 ${r(m.added).p99} ms; publish to created p50 ${r(halves.before).p50} p99 ${r(halves.before).p99} ms; Ready to answer p50 ${r(halves.after).p50} p99 ${r(halves.after).p99} ms; ${failed} failures\n`,
      )
      await world.next('empty', 'empty') // clean-up done: the next round starts from an empty namespace
      return { ...m, ...halves, failed, seconds }
    }
    const warmUp = await round('warm-up', options.arrivalMs)
    for (let i = 0; i < options.rounds; i++) {
      const m = await round('measured', options.arrivalMs)
      added.push(...m.added)
      registration.push(...m.registration)
      certManager.push(...m.certManager)
      before.push(...m.before)
      after.push(...m.after)
      failures += m.failed
      measuredSeconds += m.seconds
    }
    const burst = await round('burst', 0)
    failures += burst.failed + warmUp.failed
    const seconds = measuredSeconds
    const stats = await world.next('stats', 'stats')
    // the API server counted every round, the warm-up and the burst included
    const registrations = Math.max(1, added.length + warmUp.added.length + burst.added.length)
    const bridgeWrites = ['create', 'update', 'patch', 'delete'].reduce(
      (n, verb) => n + (stats.bridgeVerbs[verb] ?? 0),
      0,
    )
    let controllerRequests = 0
    for (const client of Object.values(stats.controller))
      for (const n of Object.values(client)) controllerRequests += n
    const result: CertManagerResult = {
      concurrent: options.concurrent,
      issuanceDelayMs: options.issuanceDelayMs,
      rounds: options.rounds,
      registrationsPerSecond: Math.round((added.length / seconds) * 10) / 10,
      registration: summarize(registration, seconds),
      certManager: summarize(certManager, seconds),
      added: summarize(added, seconds),
      toCreated: summarize(before, seconds),
      fromReady: summarize(after, seconds),
      writesPerRegistration: perRegistration(bridgeWrites, registrations),
      bridgeRequestsPerRegistration: Object.fromEntries(
        Object.entries(stats.bridgeVerbs).map(([verb, n]) => [verb, perRegistration(n, registrations)]),
      ),
      bridgeRefused: stats.bridgeRefused,
      controllerRequestsPerRegistration: perRegistration(controllerRequests, registrations),
      watchConnections: stats.watchesOpened,
      watchConnectionsOpen: stats.watchesOpen,
      apiServerCreateMs: stats.createMs,
      apiServerLoopDelayMs: stats.loopDelayMs,
      failures,
      arrivalMs: options.arrivalMs,
      burst: {
        added: summarize(burst.added, burst.seconds),
        toCreated: summarize(burst.before, burst.seconds),
      },
      warmUp: summarize(warmUp.added, warmUp.seconds),
    }
    process.stderr.write(
      `cert-manager ${options.concurrent} concurrent: added p50 ${result.added.p50} ms p99 ${result.added.p99} ms (registration p99 ${result.registration?.p99} ms, cert-manager p99 ${result.certManager?.p99} ms), bridge ${result.writesPerRegistration} writes/registration ${JSON.stringify(result.bridgeRequestsPerRegistration)}, cert-manager ${result.controllerRequestsPerRegistration} requests/registration at 20 QPS, ${result.registrationsPerSecond}/s, watches opened ${JSON.stringify(result.watchConnections)} open ${JSON.stringify(result.watchConnectionsOpen)}, ${failures} failures, ${stats.others} API requests by others, API server thread's event-loop delay ${JSON.stringify(stats.loopDelayMs)} ms, its answer to the bridge's creates ${JSON.stringify(stats.createMs)} ms\n`,
    )
    return result
  } finally {
    await target.stop()
    await world.next('closed', 'close')
    await world.worker.terminate()
  }
}
