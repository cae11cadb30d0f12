import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { TestBridge } from '../support/bridge.js'
import { connectDevice, type TestDevice } from '../support/device.js'
import type { WatchEvent } from '../support/kube/store.js'
import { type KubeWorld, RESOURCE, startKubeWorld } from '../support/kube-bridge.js'

let world: KubeWorld
let bridge: TestBridge
const added: WatchEvent[] = []

beforeAll(async () => {
  world = await startKubeWorld()
  world.api.store.on('event', (e) => {
    if (e.type === 'ADDED') added.push(e)
  })
  bridge = await world.startBridge(['registration.timeoutMs=1500'])
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
    serverSideApply: false,
  })
  world.api.faults.length = 0
})

async function registerOnce(id: string, request: object = {}): Promise<ReturnType<TestDevice['nextReply']>> {
  const device = await connectDevice(bridge, id)
  await device.send(request)
  const reply = await device.nextReply()
  await device.end()
  return reply
}

const createdFor = (r: (typeof RESOURCE)[keyof typeof RESOURCE], id: string) =>
  added.filter(
    (e) =>
      e.resource === r && e.object.metadata.annotations?.['registration.mqtt-bridge.dev/device-id'] === id,
  )

/** settled resolves once the named object is gone from the cluster. */
function gone(r: (typeof RESOURCE)[keyof typeof RESOURCE], name: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (
        !world.api.store
          .list(
            r,
            'devices',
            () => true,
            () => true,
          )
          .some((o) => o.metadata.name === name)
      ) {
        world.api.store.off('event', check)
        resolve()
      }
    }
    world.api.store.on('event', check)
    check()
  })
}

describe('issuer answers', () => {
  it('Denied → ISSUANCE_FAILED, and the Certificate is removed so a retry starts afresh', async () => {
    world.certManager.options.deny = () => true
    expect(await registerOnce('device-001', { requestId: 'denied' })).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUANCE_FAILED', retryable: false },
    })
    await gone(RESOURCE.certificates, 'dev-device-001')
  })

  it('Failed → ISSUANCE_FAILED (CSR mode)', async () => {
    world.certManager.options.fail = () => true
    const { buildCsr } = await import('../../src/pki/csr-builder.js')
    const { generateKey } = await import('../../src/pki/keys.js')
    const keys = await generateKey('ECDSA-P256')
    const reply = await registerOnce('device-002', {
      csr: buildCsr('device-002', keys.privateKey, keys.publicKey),
    })
    expect(reply).toMatchObject({ status: 'rejected', error: { code: 'ISSUANCE_FAILED' } })
  })

  it('slow issuance: ISSUANCE_TIMEOUT (retryable) keeps the Certificate; the retry resumes it, no duplicate', async () => {
    world.certManager.options.issuanceDelayMs = 2500
    expect(await registerOnce('device-003', { requestId: 'slow' })).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUANCE_TIMEOUT', retryable: true },
    })
    expect(world.count(RESOURCE.certificates)).toBeGreaterThan(0)
    world.certManager.options.issuanceDelayMs = 0
    expect(await registerOnce('device-003', { requestId: 'slow' })).toMatchObject({ status: 'issued' })
    expect(createdFor(RESOURCE.certificates, 'device-003')).toHaveLength(1)
  })

  it('an issuer that is not ready: ISSUER_UNAVAILABLE at once, then issued once it is ready', async () => {
    const notReady = bridge.waitForLog('cert-manager issuer is not Ready')
    const issuer = world.api.store.get(RESOURCE.issuers, 'devices', 'ca')
    world.api.store.update(
      RESOURCE.issuers,
      'devices',
      'ca',
      {
        ...issuer,
        status: {
          conditions: [{ type: 'Ready', status: 'False', reason: 'ErrGetKeyPair', message: 'not ready' }],
        },
      },
      'status',
    )
    // the emulated controller would re-verify the CA secret at once; keep it broken by pointing at a missing one
    world.api.store.update(RESOURCE.issuers, 'devices', 'ca', {
      ...world.api.store.get(RESOURCE.issuers, 'devices', 'ca'),
      spec: { ca: { secretName: 'missing' } },
    })
    await notReady
    // the Issuer's own condition message (secret names) is the operator's, never the device's
    expect(await registerOnce('device-004', { requestId: 'not-ready' })).toMatchObject({
      error: {
        code: 'ISSUER_UNAVAILABLE',
        message: 'the cert-manager issuer is not Ready; retry later',
        retryable: true,
      },
    })
    expect(createdFor(RESOURCE.certificates, 'device-004')).toHaveLength(0)
    const ready = bridge.waitForLog('cert-manager issuer is Ready')
    world.api.store.update(RESOURCE.issuers, 'devices', 'ca', {
      ...world.api.store.get(RESOURCE.issuers, 'devices', 'ca'),
      spec: { ca: { secretName: 'ca-key-pair' } },
    })
    await ready
    expect(await registerOnce('device-004', { requestId: 'not-ready' })).toMatchObject({ status: 'issued' })
    expect(createdFor(RESOURCE.certificates, 'device-004')).toHaveLength(1)
  })
})

type Seen = { reason?: string | undefined; status?: string | undefined }

/** issuingConditions collects the Issuing conditions the named Certificate goes through, until `stop`. */
function issuingConditions(name: string): { seen: Seen[]; stop: () => void } {
  const seen: Seen[] = []
  const onEvent = (e: WatchEvent): void => {
    if (e.resource !== RESOURCE.certificates || e.object.metadata.name !== name) return
    const status = e.object.status as { conditions?: ({ type: string } & Seen)[] } | undefined
    const conditions = status?.conditions ?? []
    const issuing = conditions.find((c) => c.type === 'Issuing')
    if (issuing) seen.push({ reason: issuing.reason, status: issuing.status })
  }
  world.api.store.on('event', onEvent)
  return { seen, stop: () => world.api.store.off('event', onEvent) }
}

describe('cert-manager with its ServerSideApply feature gate (Issuing=False, reason Issued, on success)', () => {
  it('a successful issuance is issued, not ISSUANCE_FAILED', async () => {
    world.certManager.options.serverSideApply = true
    const { seen, stop } = issuingConditions('dev-device-005')
    expect(await registerOnce('device-005', { requestId: 'ssa' })).toMatchObject({ status: 'issued' })
    stop()
    expect(seen).toContainEqual({ status: 'False', reason: 'Issued' })
    await gone(RESOURCE.certificates, 'dev-device-005')
  })

  it.each([
    ['Failed', 'failed', () => ({ fail: () => true })],
    ['an issuer’s own reason', 'own', () => ({ fail: () => true, failReason: 'VaultSignError' })],
    ['Denied', 'denied', () => ({ deny: () => true })],
  ])('%s is still ISSUANCE_FAILED', async (_reason, requestId, faults) => {
    Object.assign(world.certManager.options, { serverSideApply: true }, faults())
    // an identity each: device-005 holds a certificate now, and the default policy refuses a second registration
    const id = `device-ssa-${requestId}`
    await bridge.pki.makeDevice(id)
    expect(await registerOnce(id, { requestId: `ssa-${requestId}` })).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUANCE_FAILED', retryable: false },
    })
    await gone(RESOURCE.certificates, `dev-${id}`)
  })
})

describe('API faults', () => {
  it('500s and 429 with Retry-After on create are retried with backoff', async () => {
    world.api.faults.push({ verb: 'create', resource: 'certificates', status: 500, times: 2 })
    world.api.faults.push({
      verb: 'create',
      resource: 'certificates',
      status: 429,
      retryAfterSeconds: 1,
      times: 1,
    })
    const before = world.api.requests.length
    await bridge.pki.makeDevice('device-faults')
    expect(await registerOnce('device-faults', { requestId: 'faults' })).toMatchObject({ status: 'issued' })
    const creates = world.api.requests.slice(before).filter((r) => r.verb === 'create')
    expect(creates.map((r) => r.status)).toEqual([500, 500, 429, 201])
  })

  it('a watch dropped mid-issuance is restarted, and the registration completes', async () => {
    world.certManager.options.issuanceDelayMs = 300
    const opened = world.api.watchesOpened.get('certificates') ?? 0
    const device = await connectDevice(bridge, 'device-001')
    const created = new Promise<void>((resolve) => {
      const onEvent = (e: WatchEvent) => {
        if (e.resource === RESOURCE.certificates && e.type === 'ADDED') {
          world.api.store.off('event', onEvent)
          resolve()
        }
      }
      world.api.store.on('event', onEvent)
    })
    await device.send({ requestId: 'dropped' })
    await created
    world.api.dropWatches()
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'dropped' })
    await device.end()
    expect(world.api.watchesOpened.get('certificates') ?? 0).toBeGreaterThan(opened)
    expect(bridge.logs.some((l) => l.includes('watch failed; retrying'))).toBe(true)
  })

  it('410 Gone: history compacted while watches are down; the informers re-list and complete', async () => {
    world.certManager.options.issuanceDelayMs = 300
    const relists = world.api.requests.filter((r) => r.verb === 'list').length
    const device = await connectDevice(bridge, 'device-002')
    await device.send({ requestId: 'gone' })
    world.api.store.compact()
    world.api.dropWatches()
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'gone' })
    await device.end()
    expect(world.api.requests.filter((r) => r.verb === 'list').length).toBeGreaterThan(relists)
  })
})

describe('restarts', () => {
  it('the bridge restarted mid-registration: the device retries and gets its credentials; no duplicates', async () => {
    world.certManager.options.issuanceDelayMs = 800
    const first = await world.startBridge()
    // an identity of its own: device-003 registered above, and the default policy refuses a second registration
    await first.pki.makeDevice('device-restart')
    const device = await connectDevice(first, 'device-restart')
    const createdCert = new Promise<void>((resolve) => {
      const onEvent = (e: WatchEvent) => {
        if (
          e.resource === RESOURCE.certificates &&
          e.type === 'ADDED' &&
          e.object.metadata.name === 'dev-device-restart'
        ) {
          world.api.store.off('event', onEvent)
          resolve()
        }
      }
      world.api.store.on('event', onEvent)
    })
    await device.send({ requestId: 'restart', keyAlgorithm: 'ECDSA-P384' })
    await createdCert
    const answer = device.nextReply()
    await first.stop()
    expect(await answer).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUER_UNAVAILABLE', retryable: true },
    })
    await device.end().catch(() => {})
    const second = await world.startBridge()
    const retry = await connectDevice(second, 'device-restart')
    await retry.send({ requestId: 'restart', keyAlgorithm: 'ECDSA-P384' })
    expect(await retry.nextReply()).toMatchObject({ status: 'issued', requestId: 'restart' })
    await retry.end()
    await second.stop()
    const certs = createdFor(RESOURCE.certificates, 'device-restart').filter(
      (e) => (e.object.spec as { privateKey?: { size?: number } }).privateKey?.size === 384,
    )
    expect(certs).toHaveLength(1)
    await gone(RESOURCE.certificates, 'dev-device-restart')
  })
})
