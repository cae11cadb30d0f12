import { startKubeWorld } from '../test/support/kube-bridge.js'
import { type Device, registerOnce } from './lib/load.js'
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
  readonly requestsPerRegistration: number
  readonly watchConnections: Record<string, number>
  readonly failures: number
}

/**
 * certManagerBenchmark runs rounds of `concurrent` simultaneous registrations against a bridge (its own process)
 * on the cert-manager issuer, with the API emulation and emulated cert-manager issuing after a fixed delay.
 */
export async function certManagerBenchmark(options: {
  concurrent: number
  rounds: number
  issuanceDelayMs: number
}): Promise<CertManagerResult> {
  const world = await startKubeWorld({ issuanceDelayMs: options.issuanceDelayMs })
  const target = await startBridge(world.pki.stateDir, [
    'issuer.type=cert-manager',
    'issuer.certManager.namespace=devices',
    'issuer.certManager.issuerRef.name=ca',
    `issuer.certManager.kubeconfig=${world.kubeconfig}`,
    'issuer.certManager.apiRequestsPerSecond=2000',
    'issuer.certManager.apiBurst=2000',
    'issuer.certManager.apiMaxConcurrent=128',
  ])
  try {
    const { readFile } = await import('node:fs/promises')
    const caPem = await readFile(world.pki.file('issuing-ca.crt'), 'utf8')
    const devices: Device[] = await Promise.all(
      Array.from({ length: options.concurrent }, async (_, i) => {
        const id = `cm-${String(i).padStart(4, '0')}`
        const files = await world.pki.makeDevice(id)
        return {
          id,
          tls: {
            certPem: await readFile(files.certFile, 'utf8'),
            keyPem: await readFile(files.keyFile, 'utf8'),
            caPem,
          },
        }
      }),
    )
    const added: number[] = []
    let failures = 0
    // how long the emulated cert-manager itself took, per Certificate: from its creation to Ready
    const createdAt = new Map<string, number>()
    const tookCm = new Map<string, number>()
    world.api.store.on('event', (e) => {
      if (e.resource.plural !== 'certificates') return
      const name = e.object.metadata.name ?? ''
      if (e.type === 'ADDED') createdAt.set(name, performance.now())
      const conditions = (e.object.status as { conditions?: { type: string; status: string }[] } | undefined)
        ?.conditions
      const ready = conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
      if (e.type === 'MODIFIED' && ready && !tookCm.has(name))
        tookCm.set(name, performance.now() - (createdAt.get(name) ?? 0))
    })
    const before = world.api.requests.length
    const started = performance.now()
    for (let round = 0; round < options.rounds; round++) {
      tookCm.clear()
      const outcomes = await Promise.all(
        devices.map((d) => registerOnce(target, d, 'server-key').catch(() => undefined)),
      )
      outcomes.forEach((o, i) => {
        const took = tookCm.get(`dev-${devices[i]?.id}`)
        if (o?.status === 'issued' && took !== undefined) added.push(o.replyMs - took)
        else failures++
      })
      // let clean-up finish between rounds, so each round starts from an empty namespace
      await world.until(
        () =>
          world.count({
            group: 'cert-manager.io',
            version: 'v1',
            plural: 'certificates',
            singular: 'certificate',
            kind: 'Certificate',
            namespaced: true,
            shortNames: [],
            hasStatus: true,
          }) === 0,
      )
    }
    const seconds = (performance.now() - started) / 1000
    const requests = world.api.requests.slice(before)
    const registrations = Math.max(1, added.length)
    const result: CertManagerResult = {
      concurrent: options.concurrent,
      issuanceDelayMs: options.issuanceDelayMs,
      rounds: options.rounds,
      registrationsPerSecond: Math.round((added.length / seconds) * 10) / 10,
      added: summarize(added, seconds),
      writesPerRegistration:
        Math.round(
          (requests.filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb)).length /
            registrations) *
            100,
        ) / 100,
      requestsPerRegistration: Math.round((requests.length / registrations) * 100) / 100,
      watchConnections: Object.fromEntries(world.api.watchesOpened),
      failures,
    }
    process.stderr.write(
      `cert-manager ${options.concurrent} concurrent: added p50 ${result.added.p50} ms p99 ${result.added.p99} ms, ${result.writesPerRegistration} writes/registration, watches ${JSON.stringify(result.watchConnections)}\n`,
    )
    return result
  } finally {
    await target.stop()
    await world.close()
  }
}
