import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { type KubeWorld, startKubeWorld } from '../support/kube-bridge.js'
import { createTestPki } from '../support/pki.js'
import { makeCa, replaceFile } from '../support/rotation.js'

const probe = async (bridge: TestBridge, path: string): Promise<{ status: number; body: string }> => {
  const res = await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}${path}`)
  return { status: res.status, body: await res.text() }
}

/** readinessLog is every readiness change the bridge logged, in order. */
const readinessLog = (bridge: TestBridge): { msg: string; reasons?: string[] }[] =>
  bridge.logs.map((l) => JSON.parse(l)).filter((e) => ['ready', 'not ready', 'not ready yet'].includes(e.msg))

const started: TestBridge[] = []
const worlds: KubeWorld[] = []
afterAll(async () => {
  for (const b of started) await b.stop().catch(() => {})
  for (const w of worlds) await w.close()
})

describe('/readyz and /livez', () => {
  it('ready once listening with an issuer that can issue; /livez says only that the process answers', async () => {
    const bridge = await startTestBridge()
    started.push(bridge)
    expect(await probe(bridge, '/readyz')).toEqual({ status: 200, body: 'ok\n' })
    expect(await probe(bridge, '/livez')).toEqual({ status: 200, body: 'ok\n' })
    expect(readinessLog(bridge)).toEqual([expect.objectContaining({ msg: 'ready' })])
  })

  it('shutting down: not ready from the first moment of stop(), then the listener stops accepting; each logged once', async () => {
    const bridge = await startTestBridge()
    await bridge.stop()
    const log = readinessLog(bridge)
    expect(log.map((e) => e.msg)).toEqual(['ready', 'not ready', 'not ready'])
    expect(log[1]?.reasons).toEqual(['the bridge is shutting down'])
    expect(log[2]?.reasons).toEqual([
      'the MQTT listener is not accepting connections',
      'the bridge is shutting down',
    ])
    const messages = bridge.logs.map((l) => JSON.parse(l).msg)
    expect(messages.indexOf('not ready')).toBeLessThan(messages.indexOf('bridge stopped'))
  })
})

describe('an embedded CA that expires while the bridge runs', () => {
  // an expired CA at start-up stops `serve` (tested in the CLI tests); one that expires later turns readiness off
  it('turns not ready, says why, and turns ready when a valid CA is rotated in', async () => {
    const pki = await createTestPki()
    const dir = await mkdtemp(join(tmpdir(), 'mrb-expiring-ca-'))
    const expiring = await makeCa('Expiring CA', {
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 3_000),
    })
    await writeFile(join(dir, 'ca.crt'), expiring.certPem)
    await writeFile(join(dir, 'ca.key'), expiring.keyPem)
    const bridge = await startTestBridge(
      [
        `tls.certFile=${pki.file(DEV_PKI_FILES.serverCert)}`,
        `tls.keyFile=${pki.file(DEV_PKI_FILES.serverKey)}`,
        `tls.clientCaFile=${pki.file(DEV_PKI_FILES.factoryCaCert)}`,
        `issuer.localCa.certFile=${join(dir, 'ca.crt')}`,
        `issuer.localCa.keyFile=${join(dir, 'ca.key')}`,
      ],
      pki,
    )
    started.push(bridge)
    await bridge.waitForLog('not ready') // the CA's notAfter passes; readiness is re-checked every second
    const probed = await probe(bridge, '/readyz')
    expect(probed.status).toBe(503)
    expect(probed.body).toContain('the issuing CA certificate has expired or is not yet valid\n')
    expect(await probe(bridge, '/livez')).toMatchObject({ status: 200 })
    const next = await makeCa('Valid CA')
    const ready = bridge.waitForLog('ready')
    // one directory swap would be atomic; two renames pass through a mismatched pair, which is refused first
    await replaceFile(join(dir, 'ca.key'), next.keyPem)
    await replaceFile(join(dir, 'ca.crt'), next.certPem)
    await ready
    expect(await probe(bridge, '/readyz')).toEqual({ status: 200, body: 'ok\n' })
    expect(readinessLog(bridge).map((e) => e.msg)).toEqual(['ready', 'not ready', 'ready'])
  })
})

describe('cert-manager', () => {
  it('is not ready while the issuer’s informers cannot list, and ready once they do', async () => {
    const world = await startKubeWorld()
    worlds.push(world)
    const fault = { verb: 'list' as const, status: 503 as const, times: Number.MAX_SAFE_INTEGER }
    world.api.faults.push(fault)
    const bridge = await startTestBridge(
      [
        'issuer.type=cert-manager',
        'issuer.certManager.namespace=devices',
        'issuer.certManager.issuerRef.name=ca',
        `issuer.certManager.kubeconfig=${world.kubeconfig}`,
      ],
      world.pki,
    )
    started.push(bridge)
    // every list fails, so the informers cannot have synced
    expect(await probe(bridge, '/readyz')).toEqual({
      status: 503,
      body: 'not ready\nthe issuer (cert-manager) cannot issue\n',
    })
    const ready = bridge.waitForLog('ready')
    fault.times = 0
    await ready
    expect(await probe(bridge, '/readyz')).toEqual({ status: 200, body: 'ok\n' })
    expect(readinessLog(bridge).map((e) => e.msg)).toEqual(['not ready yet', 'ready'])
  })
})
