import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { buildCsr, generatePrivateKey, signCsr } from '../support/kube/signer.js'
import { type KubeWorld, NAMESPACE, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'
import { start } from '../support/process.js'

// deploy/'s world: ClusterIssuer with the CA key out of the bridge's namespace, the bridge limited to role.yaml
let world: KubeWorld
let bridge: TestBridge
const TIMEOUT_MS = 1500

beforeAll(async () => {
  world = await startKubeWorld({ cluster: true })
  bridge = await world.startBridge([`registration.timeoutMs=${TIMEOUT_MS}`])
})

afterAll(async () => {
  await bridge?.stop()
  await world?.close()
})

afterEach(() => {
  Object.assign(world.certManager.options, {
    issuanceDelayMs: 0,
    deny: () => false,
    fail: () => false,
    failReason: 'Failed',
  })
  world.api.faults.length = 0
})

async function register(id: string, request: object = {}, on: TestBridge = bridge) {
  await world.pki.makeDevice(id)
  const device = await connectDevice(on, id)
  await device.send(request)
  const reply = await device.nextReply()
  await device.end()
  return reply as {
    status: string
    error?: { code: string; message: string }
    certificate?: string
    privateKey?: string
  }
}

const labelled = (r: (typeof RESOURCE)[keyof typeof RESOURCE]) =>
  world.api.store
    .list(
      r,
      NAMESPACE,
      () => true,
      () => true,
    )
    .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'mqtt-registration-bridge')

const ca = () => ({
  certificatePem: readFileSync(world.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
  keyPem: readFileSync(world.pki.file(DEV_PKI_FILES.issuingCaKey), 'utf8'),
})

describe('cert-manager semantics', () => {
  it('Issuing=False with an issuer-specific reason is final: ISSUANCE_FAILED naming it, not a timeout loop', async () => {
    world.certManager.options.fail = () => true
    world.certManager.options.failReason = 'SigningError'
    const reply = await register('cm-reason')
    expect(reply).toMatchObject({ status: 'rejected', error: { code: 'ISSUANCE_FAILED' } })
    expect(reply.error?.message).toContain('SigningError')
  })

  it('a Certificate left with another spec (RSA-2048) is re-created for this registration (ECDSA-P256)', async () => {
    const { certificateFor } = await import('../../src/issuers/cert-manager/resources.js')
    world.api.store.create(
      RESOURCE.certificates,
      NAMESPACE,
      certificateFor(
        { commonName: 'cm-respec', dnsNames: [], uris: [], validityHours: 24 } as never,
        'RSA-2048',
        { name: 'device-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
        NAMESPACE,
      ) as never,
    )
    await world.until(() => labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-respec-tls'))
    const reply = await register('cm-respec', { keyAlgorithm: 'ECDSA-P256' })
    expect(reply.status).toBe('issued')
    expect(new X509Certificate(reply.certificate as string).publicKey.asymmetricKeyType).toBe('ec')
  })

  it('a valid leftover Secret from before this registration is not handed out: it is re-issued', async () => {
    const keyPem = generatePrivateKey({ algorithm: 'ECDSA', size: 256 })
    const old = await signCsr(
      await buildCsr(keyPem, { commonName: 'cm-leftover' }),
      ca(),
      ['digital signature', 'client auth'],
      24 * 3600_000,
      false,
      new Date(Date.now() - 3600_000),
    )
    const b64 = (t: string) => Buffer.from(t).toString('base64')
    world.api.store.create(RESOURCE.secrets, NAMESPACE, {
      metadata: {
        name: 'dev-cm-leftover-tls',
        labels: { 'app.kubernetes.io/managed-by': 'mqtt-registration-bridge' },
      },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(old), 'tls.key': b64(keyPem), 'ca.crt': b64(ca().certificatePem) },
    })
    const reply = await register('cm-leftover', { keyAlgorithm: 'ECDSA-P256' })
    expect(reply.status).toBe('issued')
    expect(new X509Certificate(reply.certificate as string).serialNumber).not.toBe(
      new X509Certificate(old).serialNumber,
    )
  })

  it('an identity longer than the webhook allows in commonName is refused before anything is created', async () => {
    const id = `device-${'x'.repeat(60)}`
    const creates = world.api.requests.filter((r) => r.verb === 'create').length
    const reply = await register(id)
    expect(reply).toMatchObject({ status: 'rejected', error: { code: 'ISSUANCE_FAILED' } })
    expect(reply.error?.message).toContain('64')
    expect(world.api.requests.filter((r) => r.verb === 'create').length).toBe(creates)
  })

  it('a CSR whose key usages differ from the default is accepted by the webhook (usages taken from the CSR)', async () => {
    const dir = world.pki.stateDir
    const key = join(dir, 'ku.key')
    execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ])
    const csr = execFileSync('openssl', [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      '/CN=cm-usages',
      '-addext',
      'keyUsage=critical,digitalSignature',
    ]).toString()
    const reply = await register('cm-usages', { csr })
    expect(reply.status).toBe('issued')
  })
})

describe('CSR usages beyond a device client certificate', () => {
  it('serverAuth: EXTENSION_NOT_ALLOWED before anything is created', async () => {
    const key = join(world.pki.stateDir, 'eku.key')
    execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ])
    const csr = execFileSync('openssl', [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      '/CN=cm-eku',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]).toString()
    const creates = world.api.requests.filter((r) => r.verb === 'create').length
    expect(await register('cm-eku', { csr })).toMatchObject({
      status: 'rejected',
      error: { code: 'EXTENSION_NOT_ALLOWED' },
    })
    expect(world.api.requests.filter((r) => r.verb === 'create').length).toBe(creates)
  })
})

describe('nothing left behind', () => {
  it('a bridge SIGKILLed mid-issuance leaves a Certificate and key Secret; after a restart one resync removes them', async () => {
    world.certManager.options.issuanceDelayMs = 200
    const cli = new URL('../../dist/cli.js', import.meta.url).pathname
    const crashed = start(process.execPath, [
      ...[cli, 'serve', '--state-dir', world.pki.stateDir, '--host', '127.0.0.1', '--port', '0'],
      ...['--log-level', 'warn', '--set', 'health.enabled=false', '--set', 'issuer.type=cert-manager'],
      ...[
        '--set',
        `issuer.certManager.namespace=${NAMESPACE}`,
        '--set',
        `issuer.certManager.kubeconfig=${world.kubeconfig}`,
      ],
      ...[
        '--set',
        'issuer.certManager.issuerRef.name=device-ca',
        '--set',
        'issuer.certManager.issuerRef.kind=ClusterIssuer',
      ],
      ...['--set', `registration.timeoutMs=${TIMEOUT_MS}`],
    ])
    await crashed.waitFor(/Bridge listening on mqtts:\/\/127\.0\.0\.1:(\d+)/)
    const port = /mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(crashed.output())?.[1]
    await world.pki.makeDevice('cm-crash')
    const device = await connectDevice(
      { ...bridge, url: `mqtts://127.0.0.1:${port}`, port: Number(port) },
      'cm-crash',
    )
    await device.send({})
    await world.until(() => labelled(RESOURCE.certificates).some((c) => c.metadata.name === 'dev-cm-crash'))
    process.kill(crashed.pid as number, 'SIGKILL')
    expect(await crashed.exited).toBe(-1)
    await device.end().catch(() => {})
    // cert-manager finishes the issuance nobody waits for: a device key now sits in the cluster
    await world.until(() => labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-crash-tls'))
    const second = await world.startBridge([
      `registration.timeoutMs=${TIMEOUT_MS}`,
      'issuer.certManager.resyncSeconds=1',
    ])
    try {
      // removed by the pass at start (if already older than the timeout) or by the first resync after it
      await world.until(
        () =>
          !labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-crash-tls') &&
          !labelled(RESOURCE.certificates).some((c) => c.metadata.name === 'dev-cm-crash'),
      )
      expect(second.logs.filter((l) => l.includes('reconciled leftovers')).length).toBeLessThanOrEqual(2)
      expect(labelled(RESOURCE.secrets)).toHaveLength(0)
    } finally {
      await second.stop()
    }
  })
})

describe('nothing left behind, after timeouts and failed clean-ups', () => {
  let janitor: TestBridge
  beforeAll(async () => {
    janitor = await world.startBridge([
      `registration.timeoutMs=${TIMEOUT_MS}`,
      'issuer.certManager.resyncSeconds=1',
    ])
  })
  afterAll(() => janitor?.stop())

  it('a failed Certificate delete does not skip the Secret delete; the next resync removes the Certificate', async () => {
    world.api.faults.push({ verb: 'delete', resource: 'certificates', status: 403, times: 1 })
    const secretGone = world.until(
      () => !labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-cleanup-tls'),
    )
    expect((await register('cm-cleanup', {}, janitor)).status).toBe('issued')
    await secretGone
    await world.until(
      () => !labelled(RESOURCE.certificates).some((c) => c.metadata.name === 'dev-cm-cleanup'),
    )
    expect(
      world.api.requests.some((r) => r.verb === 'delete' && r.name === 'dev-cm-cleanup' && r.status === 403),
    ).toBe(true)
  })

  it('a timeout nobody retries: the Certificate and the key Secret cert-manager writes later are removed', async () => {
    world.certManager.options.issuanceDelayMs = TIMEOUT_MS + 200
    expect(await register('cm-abandoned', {}, janitor)).toMatchObject({ error: { code: 'ISSUANCE_TIMEOUT' } })
    await world.until(() =>
      labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-abandoned-tls'),
    )
    await world.until(
      () =>
        !labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-abandoned-tls') &&
        !labelled(RESOURCE.certificates).some((c) => c.metadata.name === 'dev-cm-abandoned'),
    )
  })
})

describe('watches', () => {
  it('back off 50, 100, 200, 400 ms on failures, then 800: a watch that merely reconnected does not reset it', async () => {
    const delays = () =>
      bridge.logs
        .map((l) => JSON.parse(l) as { msg: string; watch?: string; delayMs?: number })
        .filter((l) => l.msg === 'watch failed; retrying' && l.watch === 'certificaterequests')
        .map((l) => l.delayMs)
    const before = delays().length
    // a dropped connection, then three 503s on re-watching: four failures in a row
    world.api.faults.push({ verb: 'watch', resource: 'certificaterequests', status: 503, times: 3 })
    let recovered = bridge.waitForLog('watch recovered')
    world.api.dropWatches('certificaterequests')
    await recovered
    expect(delays().slice(before)).toEqual([50, 100, 200, 400])
    // the watch is up again, but only briefly: client-go resets the schedule only after a watch has stayed up
    // for watchBackoffResetSeconds, so the next failure goes on doubling instead of starting at 50
    recovered = bridge.waitForLog('watch recovered')
    world.api.dropWatches('certificaterequests')
    await recovered
    expect(delays().slice(before)).toEqual([50, 100, 200, 400, 800])
  })
})

/** docTable reads the rows of the table after `<!-- marker -->` in docs/kubernetes.md. */
function docTable(marker: string): string[][] {
  const text = readFileSync(join(import.meta.dirname, '../../docs/kubernetes.md'), 'utf8')
  const after = text.slice(text.indexOf(`<!-- ${marker} -->`) + marker.length + 9)
  const rows: string[][] = []
  for (const line of after.trimStart().split('\n')) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    )
  }
  return rows.slice(2)
}

describe('watch timeouts', () => {
  it('a watch the server ends at its timeoutSeconds is re-opened at once from its bookmark, with no backoff', async () => {
    const short = await world.startBridge([
      `registration.timeoutMs=${TIMEOUT_MS}`,
      'issuer.certManager.watchTimeoutSeconds=1',
    ])
    try {
      const opened = world.api.watchesOpened.get('secrets') ?? 0
      const ended = () =>
        short.logs.filter((l) => l.includes('watch ended; watching again') && l.includes('"watch":"secrets"'))
          .length
      // the second end of the secrets watch is the end of the watch re-opened after the first
      while (ended() < 2) await short.waitForLog('watch ended; watching again')
      expect(short.logs.some((l) => l.includes('watch failed'))).toBe(false)
      expect(world.api.watchesOpened.get('secrets') ?? 0).toBeGreaterThan(opened)
      expect((await fetch(`http://127.0.0.1:${short.bridge.healthPort}/readyz`)).status).toBe(200)
      expect((await register('cm-short-watch', {}, short)).status).toBe('issued')
    } finally {
      await short.stop()
    }
  })
})

describe('readiness and Retry-After', () => {
  const readyz = async () => (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/readyz`)).status

  it('/readyz is 503 while the ClusterIssuer is not Ready, and registrations answer ISSUER_UNAVAILABLE at once', async () => {
    expect(await readyz()).toBe(200)
    const notReady = bridge.waitForLog('cert-manager issuer is not Ready')
    const issuer = world.api.store.get(RESOURCE.clusterIssuers, '', 'device-ca')
    world.api.store.update(RESOURCE.clusterIssuers, '', 'device-ca', {
      ...issuer,
      spec: { ca: { secretName: 'missing' } },
    })
    await notReady
    expect(await readyz()).toBe(503)
    expect(await register('cm-unready')).toMatchObject({
      error: { code: 'ISSUER_UNAVAILABLE', retryable: true },
    })
    const ready = bridge.waitForLog('cert-manager issuer is Ready')
    world.api.store.update(RESOURCE.clusterIssuers, '', 'device-ca', {
      ...world.api.store.get(RESOURCE.clusterIssuers, '', 'device-ca'),
      spec: { ca: { secretName: 'device-ca-key-pair' } },
    })
    await ready
    expect(await readyz()).toBe(200)
  })

  it('/readyz is 503 while a watch is down; a 429 on the re-list is retried after its Retry-After', async () => {
    const delays = () =>
      bridge.logs
        .map((l) => JSON.parse(l) as { msg: string; watch?: string; delayMs?: number })
        .filter((l) => l.msg === 'watch failed; retrying' && l.watch === 'secrets')
        .map((l) => l.delayMs)
    const before = delays().length
    world.api.faults.push({ verb: 'list', resource: 'secrets', status: 429, retryAfterSeconds: 2, times: 1 })
    world.api.store.compact()
    world.api.dropWatches('secrets')
    await bridge.waitForLog('watch failed; retrying')
    expect(await readyz()).toBe(503)
    // the dropped watch may end as a clean close (re-watched at once) or as a failure; the re-list's 429 fails
    while (world.api.faults[0]?.times !== 0 || delays().length === before)
      await bridge.waitForLog('watch failed; retrying')
    expect(delays().slice(before).at(-1)).toBe(2000)
    // logged before the 2 s wait, so the recovery is still to come
    await bridge.waitForLog('watch recovered')
    expect(await readyz()).toBe(200)
  })
})

describe('docs/kubernetes.md is what the code does', () => {
  const bridgeWrites = (from: number) =>
    world.api.requests
      .slice(from)
      .filter((r) => r.user.startsWith('system:serviceaccount') && r.verb !== 'list' && r.verb !== 'watch')
      .map((r) => [r.verb, r.resource])
  // the emulation logs a request once its answer is computed, a microtask after the store's event
  const logged = () => new Promise((resolve) => setImmediate(resolve))

  it('server-side key mode: the API calls of one registration', async () => {
    const from = world.api.requests.length
    expect((await register('cm-doc-key')).status).toBe('issued')
    await world.until(() => !labelled(RESOURCE.secrets).some((s) => s.metadata.name === 'dev-cm-doc-key-tls'))
    await world.until(
      () => !labelled(RESOURCE.certificates).some((s) => s.metadata.name === 'dev-cm-doc-key'),
    )
    await logged()
    expect(bridgeWrites(from)).toEqual(docTable('api-calls:server-side-key').map((row) => [row[1], row[2]]))
  })

  it('CSR mode: the API calls of one registration', async () => {
    const dir = world.pki.stateDir
    const key = join(dir, 'doc.key')
    execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ])
    const csr = execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=cm-doc-csr']).toString()
    const from = world.api.requests.length
    expect((await register('cm-doc-csr', { csr })).status).toBe('issued')
    await world.until(
      () => !labelled(RESOURCE.requests).some((r) => r.metadata.name?.startsWith('dev-cm-doc-csr')),
    )
    await logged()
    expect(bridgeWrites(from)).toEqual(docTable('api-calls:csr').map((row) => [row[1], row[2]]))
  })

  it('the RBAC table is deploy/role.yaml', () => {
    const docs = parseAllDocuments(readFileSync(join(import.meta.dirname, '../../deploy/role.yaml'), 'utf8'))
    const fromYaml = docs
      .flatMap(
        (d) =>
          (d.toJSON() as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }).rules,
      )
      .flatMap((rule) =>
        rule.resources.map((res) => [rule.apiGroups[0], res, [...rule.verbs].sort().join(',')]),
      )
      .sort()
    const fromDoc = docTable('rbac')
      .map((row) => [
        (row[0] ?? '').replace(/`/g, '').replace(/^""$/, ''),
        /`([^`]+)`/.exec(row[1] ?? '')?.[1],
        (row[2] ?? '')
          .split(',')
          .map((v) => v.trim())
          .sort()
          .join(','),
      ])
      .sort()
    expect(fromDoc).toEqual(fromYaml)
  })
})

describe('least privilege', () => {
  it('the verbs the bridge used are exactly the verbs deploy/role.yaml grants', () => {
    const used = new Map<string, Set<string>>()
    for (const r of world.api.requests.filter(
      (r) => r.user.startsWith('system:serviceaccount') && !r.injected,
    )) {
      expect(r.status).not.toBe(403)
      const key = `${r.group}/${r.resource}`
      used.set(key, (used.get(key) ?? new Set()).add(r.verb))
    }
    const granted = new Map<string, Set<string>>()
    const docs = parseAllDocuments(readFileSync(join(import.meta.dirname, '../../deploy/role.yaml'), 'utf8'))
    for (const d of docs.map(
      (d) => d.toJSON() as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] },
    ))
      for (const rule of d.rules)
        for (const g of rule.apiGroups)
          for (const res of rule.resources) granted.set(`${g}/${res}`, new Set(rule.verbs))
    const sorted = (m: Map<string, Set<string>>) =>
      Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort())
    expect(sorted(used)).toEqual(sorted(granted))
  })
})
