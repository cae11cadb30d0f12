import { parentPort, workerData } from 'node:worker_threads'
import { RESOURCE, startKubeWorld } from '../../test/support/kube-bridge.js'

/**
 * The Kubernetes API emulation and the emulated cert-manager (rate-limited like the real controller: 20 QPS,
 * burst 50, cert-manager's defaults), in a worker thread of their own, so that the
 * load generator's work does not slow them down (or the other way round). Messages: `stats`, `empty`, `close`.
 */
const port = parentPort
if (!port) throw new Error('kube-world runs as a worker thread')
const world = await startKubeWorld({
  issuanceDelayMs: (workerData as { issuanceDelayMs: number }).issuanceDelayMs,
})
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
    const requests = world.api.requests
    port.postMessage({
      kind: 'stats',
      total: requests.length,
      writes: requests.filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb)).length,
      watches: Object.fromEntries(world.api.watchesOpened),
      controllerWrites: world.certManager.writes,
    })
  } else if (message === 'empty') {
    await world.until(() => certificates() === 0)
    port.postMessage({ kind: 'empty' })
  } else if (message === 'close') {
    await world.close()
    port.postMessage({ kind: 'closed' })
  }
})
port.postMessage({ kind: 'ready', kubeconfig: world.kubeconfig, stateDir: world.pki.stateDir })
