import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestBridge } from '../support/bridge.js'
import { startTestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { type KubeWorld, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'

let world: KubeWorld
let bridge: TestBridge

beforeAll(async () => {
  // the bridge's side is under test here; the controller's own 20 QPS limit is what bench/ measures
  world = await startKubeWorld({ rateLimit: { qps: 10_000, burst: 10_000 } })
  bridge = await world.startBridge([
    'issuer.certManager.apiRequestsPerSecond=1000',
    'issuer.certManager.apiBurst=1000',
  ])
})

afterAll(async () => {
  await bridge?.stop()
  await world?.close()
})

describe('load', () => {
  it('200 concurrent registrations complete over one watch connection per kind, at most 3 writes each', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `load-${String(i).padStart(3, '0')}`)
    await Promise.all(ids.map((id) => world.pki.makeDevice(id)))
    const before = world.api.requests.length
    const devices = await Promise.all(ids.map((id) => connectDevice(bridge, id)))
    await Promise.all(devices.map((d, i) => d.send({ requestId: `load-${i}` })))
    const replies = await Promise.all(devices.map((d) => d.nextReply()))
    await Promise.all(devices.map((d) => d.end()))
    expect(replies.filter((r) => r.status === 'issued')).toHaveLength(200)
    for (const kind of ['certificates', 'certificaterequests', 'secrets']) {
      expect(world.api.watchesOpened.get(kind), kind).toBe(1)
      expect(world.api.openWatches.get(kind), kind).toBe(1)
    }
    const writes = world.api.requests
      .slice(before)
      .filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb))
    expect(writes.length).toBeLessThanOrEqual(3 * 200)
    expect(world.api.requests.slice(before).filter((r) => r.verb === 'get' || r.verb === 'list')).toEqual([])
    // and then nothing is left: Certificates, their Secrets and (by garbage collection) their requests
    // the CA key pair is the one Secret left
    await world.until(
      () =>
        world.count(RESOURCE.certificates) +
          world.count(RESOURCE.requests) +
          world.count(RESOURCE.secrets) ===
        1,
    )
  })
})

describe('probes', () => {
  it('/readyz is 200 once informers have synced; /livez is 200', async () => {
    const base = `http://127.0.0.1:${bridge.bridge.healthPort}`
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    expect((await fetch(`${base}/livez`)).status).toBe(200)
    expect((await fetch(`${base}/nope`)).status).toBe(404)
  })

  it('/readyz is 503 while the Kubernetes API cannot be reached; /livez stays 200', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-unreachable-'))
    const kubeconfig = join(dir, 'kubeconfig')
    const cluster = { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true }
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster }],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    )
    const isolated = await startTestBridge(
      [
        'issuer.type=cert-manager',
        'issuer.certManager.issuerRef.name=ca',
        `issuer.certManager.kubeconfig=${kubeconfig}`,
      ],
      world.pki,
    )
    const base = `http://127.0.0.1:${isolated.bridge.healthPort}`
    expect((await fetch(`${base}/readyz`)).status).toBe(503)
    expect((await fetch(`${base}/livez`)).status).toBe(200)
    await isolated.stop()
  })
})
