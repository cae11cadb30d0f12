import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { BRIDGE_USER, RESOURCE, startKubeWorld } from '../../test/support/kube-bridge.js'

/**
 * The Kubernetes API emulation and the emulated cert-manager, in a worker thread of their own, so that the
 * load generator's work does not slow them down (or the other way round). The world is deploy/'s: the bridge
 * authenticates as its service account, with deploy/role.yaml's RBAC, and issues through the ClusterIssuer;
 * what the API server records for that account is the bridge's. The emulated controller is rate-limited like
 * the real one (20 QPS, burst 50, per client), one token per API request; it reads from its cache.
 * Messages: `stats`, `empty`, `close`.
 */
const port = parentPort
if (!port) throw new Error('kube-world runs as a worker thread')
const world = await startKubeWorld({
  issuanceDelayMs: (workerData as { issuanceDelayMs: number }).issuanceDelayMs,
  cluster: true,
})
// how long the API server's work waited behind other work in this thread (the controller's included)
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
const now = (): number => performance.timeOrigin + performance.now()
world.api.store.on('event', (e) => {
  if (e.resource.plural !== 'certificates') return
  const conditions = (e.object.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions
  const ready = conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
  if (e.type === 'ADDED')
    port.postMessage({ kind: 'certificate', name: e.object.metadata.name, event: 'added', at: now() })
  else if (e.type === 'MODIFIED' && ready)
    port.postMessage({ kind: 'certificate', name: e.object.metadata.name, event: 'ready', at: now() })
})
const certificates = (): number => world.count(RESOURCE.certificates)
port.on('message', async (message: string) => {
  if (message === 'stats') {
    const bridge = world.api.requests.filter((r) => r.user === BRIDGE_USER)
    const verbs: Record<string, number> = {}
    for (const r of bridge) verbs[r.verb] = (verbs[r.verb] ?? 0) + 1
    const creates = bridge
      .filter((r) => r.verb === 'create')
      .map((r) => r.ms ?? 0)
      .sort((a, b) => a - b)
    const at = (p: number): number =>
      creates[Math.min(creates.length - 1, Math.ceil(p * creates.length) - 1)] ?? 0
    port.postMessage({
      kind: 'stats',
      createMs: { p50: at(0.5), p99: at(0.99), max: creates.at(-1) ?? 0 },
      bridgeVerbs: verbs,
      bridgeRefused: bridge.filter((r) => r.status >= 400).length,
      others: world.api.requests.length - bridge.length,
      watchesOpened: Object.fromEntries(world.api.watchesOpened),
      watchesOpen: Object.fromEntries(world.api.openWatches),
      controller: world.certManager.requests,
      loopDelayMs: {
        p50: Math.round(loopDelay.percentile(50) / 1e4) / 100,
        p99: Math.round(loopDelay.percentile(99) / 1e4) / 100,
        max: Math.round(loopDelay.max / 1e4) / 100,
      },
    })
  } else if (message === 'empty') {
    await world.until(() => certificates() === 0)
    port.postMessage({ kind: 'empty' })
  } else if (message === 'close') {
    await world.close()
    port.postMessage({ kind: 'closed' })
  }
})
port.postMessage({
  kind: 'ready',
  kubeconfig: world.kubeconfig,
  stateDir: world.pki.stateDir,
  issuerSets: world.issuerSets,
})
