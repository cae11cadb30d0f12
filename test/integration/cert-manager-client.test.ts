import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadKubeConfig } from '../../src/issuers/cert-manager/kube-config.js'
import { type KubeApiServer, startKubeApiServer } from '../support/kube/api-server.js'

// The one patch of @kubernetes/client-node's private internals (KubeConfig.createAgent, for keep-alive)
// is guarded here: these tests fail when the pinned client changes under it.
let api: KubeApiServer
let kubeconfig: string

beforeAll(async () => {
  api = await startKubeApiServer()
  api.createNamespace('devices')
  kubeconfig = await api.writeKubeconfig(await mkdtemp(join(tmpdir(), 'mrb-client-')), 'devices')
})

afterAll(() => api?.close())

describe('@kubernetes/client-node, as the bridge uses it', () => {
  it('is the pinned 1.4.0, whose KubeConfig still builds agents through createAgent', () => {
    const require = createRequire(import.meta.url)
    const manifest = require.resolve('@kubernetes/client-node/package.json')
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }
    expect(
      version,
      'client-node changed: review reuseConnections in src/issuers/cert-manager/kube-config.ts',
    ).toBe('1.4.0')
    expect(typeof (KubeConfig.prototype as unknown as { createAgent?: unknown }).createAgent).toBe('function')
  })

  it('with the patch, ten API calls share one TLS connection (without it, each opens its own)', async () => {
    const count = async (kc: KubeConfig) => {
      const core = kc.makeApiClient(CoreV1Api)
      const before = api.connections.count
      for (let i = 0; i < 10; i++) await core.listNamespacedSecret({ namespace: 'devices' })
      return api.connections.count - before
    }
    const plain = new KubeConfig()
    plain.loadFromFile(kubeconfig)
    expect(await count(plain)).toBe(10)
    expect(await count(loadKubeConfig(kubeconfig))).toBe(1)
  })
})
