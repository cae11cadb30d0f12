import { X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistrationRejectedError } from '../../src/client/answer.js'
import { connectTls, type Registration, register, renew } from '../../src/client/register.js'
import { registerDevices } from '../../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { writePolicy } from '../support/gateway.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { openssl, run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname

let bridge: TestBridge
const bridges: TestBridge[] = []
const brokers: Mosquitto[] = []

async function started(sets: string[], pki?: TestPki): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

async function production(b: TestBridge, extra: string[] = []): Promise<Mosquitto> {
  const m = await startMosquitto({
    cafile: b.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: b.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: b.pki.file(DEV_PKI_FILES.serverKey),
    extra,
  })
  brokers.push(m)
  return m
}

const caPem = (b: TestBridge): Promise<string> => readFile(b.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')

/** registerDevice registers with the factory certificate (a key made on the device). */
async function registerDevice(
  b: TestBridge,
  id: string,
  requestId?: string,
  csr = true,
): Promise<Registration> {
  return register({
    url: b.url,
    ...tlsFor(b, b.pki.device(id)),
    csr,
    ...(requestId ? { requestId } : {}),
    timeoutMs: 10_000,
  })
}

/** renewWith renews with an operational certificate and its key. */
async function renewWith(b: TestBridge, current: Registration): Promise<Registration> {
  return renew({
    url: b.url,
    certPem: current.certificatePem,
    keyPem: current.privateKeyPem,
    caPem: await caPem(b),
    timeoutMs: 10_000,
  })
}

async function rejection(promise: Promise<unknown>): Promise<RegistrationRejectedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RegistrationRejectedError)
  return err as RegistrationRejectedError
}

/** cliRun runs the real CLI against a test bridge's state directory. */
async function cliRun(b: TestBridge, args: string[]) {
  return run('node', [cli, ...args, '--state-dir', b.pki.stateDir], { timeoutMs: 30_000 })
}

/** connectsTo says whether mosquitto (or the bridge) accepts these credentials; the refusal otherwise. */
async function connects(url: string, tls: { certPem: string; keyPem: string; caPem: string }) {
  try {
    const client = await connectTls(url, tls, 5_000)
    await client.endAsync(true)
    return 'accepted'
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

const asTls = (r: Registration) => ({
  certPem: r.certificatePem,
  keyPem: r.privateKeyPem,
  caPem: r.caCertificatesPem,
})

beforeAll(async () => {
  bridge = await started([
    'lifecycle.renewal.windowFraction=1',
    'lifecycle.reRegistration=refuse',
    'lifecycle.renewal.rateLimit.burst=10',
    // revocations here come from the CLI (another process): the device gauge sees them at its next count
    'health.deviceCountsSeconds=1',
  ])
})

afterAll(async () => {
  for (const b of bridges) await b.stop()
  for (const m of brokers) await m.stop()
})

describe('renewal with the operational certificate', () => {
  it('renews; the new certificate works on a production mosquitto; the registry and audit log record it', async () => {
    const first = await registerDevice(bridge, 'device-001')
    const second = await renewWith(bridge, first)
    expect(second.serialNumber).not.toBe(first.serialNumber)
    expect(
      new X509Certificate(second.certificatePem).publicKey.export({ format: 'der', type: 'spki' }),
    ).not.toEqual(new X509Certificate(first.certificatePem).publicKey.export({ format: 'der', type: 'spki' }))
    const mosquitto = await production(bridge)
    expect(await connects(mosquitto.url, asTls(second))).toBe('accepted')
    const registry = new SqliteRegistry(bridge.bridge.config.registry.file, { readonly: true })
    const device = await registry.device('device-001')
    await registry.close()
    expect(device?.certificates.map((c) => [c.serialNumber, c.state, c.supersededBy])).toEqual([
      [second.serialNumber, 'active', undefined],
      [first.serialNumber, 'superseded', second.serialNumber],
    ])
    const audit = (await bridge.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(
      audit.filter((r) => r.identity === 'device-001').map((r) => [r.event, r.serialNumber, r.supersedes]),
    ).toEqual([
      ['registered', first.serialNumber, undefined],
      ['renewed', second.serialNumber, first.serialNumber],
    ])
    // renewing with the superseded certificate is refused
    const stale = await rejection(renewWith(bridge, first))
    expect(stale.code).toBe('NOT_AUTHORIZED')
    expect(stale.message).toContain('superseded')
    // the newest renews again
    const third = await renewWith(bridge, second)
    expect(third.serialNumber).not.toBe(second.serialNumber)
  })

  it('refuses a renewal that keeps the key, when a new key is required', async () => {
    const first = await registerDevice(bridge, 'device-002')
    // the CSR of the current key: register's CSR mode with the current key is what a careless device sends
    const { buildCsr } = await import('../../src/pki/csr-builder.js')
    const { createPrivateKey, createPublicKey } = await import('node:crypto')
    const key = createPrivateKey(first.privateKeyPem)
    const client = await connectTls(bridge.url, { ...asTls(first), caPem: await caPem(bridge) })
    try {
      const reply = new Promise<Record<string, unknown>>((resolve) =>
        client.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
      )
      await client.subscribeAsync('registration/device-002/reply', { qos: 1 })
      await client.publishAsync(
        'registration/request',
        JSON.stringify({ requestId: 'same-key', csr: buildCsr('device-002', key, createPublicKey(key)) }),
        { qos: 1 },
      )
      expect(await reply).toMatchObject({ status: 'rejected', error: { code: 'KEY_NOT_ALLOWED' } })
    } finally {
      await client.endAsync(true)
    }
  })

  it('before the renewal window opens, a renewal is told when to come back', async () => {
    const early = await started(['lifecycle.reRegistration=refuse'])
    const first = await registerDevice(early, 'device-001')
    const err = await rejection(renewWith(early, first))
    expect(err.code).toBe('RENEWAL_NOT_DUE')
    expect(err.retryable).toBe(true)
    // half of 720 hours
    expect(err.retryAfterSeconds).toBeGreaterThan(359 * 3600)
  })

  it('a server-key renewal retried with the old certificate after a restart replaces the certificate whose key was lost', async () => {
    const sets = [
      'lifecycle.renewal.windowFraction=1',
      'lifecycle.reRegistration=refuse',
      'lifecycle.renewal.rateLimit.burst=10',
    ]
    const before = await startTestBridge(sets)
    const first = await registerDevice(before, 'device-001', 'first')
    const lost = await renew({
      url: before.url,
      certPem: first.certificatePem,
      keyPem: first.privateKeyPem,
      caPem: await caPem(before),
      csr: false,
      requestId: 'rr-1',
      timeoutMs: 10_000,
    })
    await before.stop()
    const after = await started(sets, before.pki)
    const retry = (requestId: string) =>
      renew({
        url: after.url,
        certPem: first.certificatePem,
        keyPem: first.privateKeyPem,
        caPem: first.caCertificatesPem,
        csr: false,
        requestId,
        timeoutMs: 10_000,
      })
    const again = await retry('rr-1')
    expect(again.serialNumber).not.toBe(lost.serialNumber)
    const registry = new SqliteRegistry(after.bridge.config.registry.file, { readonly: true })
    const device = await registry.device('device-001')
    await registry.close()
    expect(device?.certificates.map((c) => [c.serialNumber, c.state, c.supersededBy])).toEqual([
      [again.serialNumber, 'active', undefined],
      [lost.serialNumber, 'superseded', again.serialNumber],
      [first.serialNumber, 'superseded', lost.serialNumber],
    ])
    // any other request with the superseded certificate is still refused
    const other = await rejection(retry('rr-2'))
    expect(other.message).toContain('superseded')
    await renewWith(after, again)
  })
})

describe('revocation', () => {
  it('revoke: the CRL verifies, a production mosquitto with it refuses the device, and the device cannot renew', async () => {
    const revoked = await registerDevice(bridge, 'device-003')
    const kept = await registerDevice(bridge, 'device-004')
    const result = await cliRun(bridge, ['revoke', '--identity', 'device-003', '--reason', 'keyCompromise'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`revoked device-003 ${revoked.serialNumber} (keyCompromise)`)
    const crlFile = bridge.bridge.config.lifecycle.crl.file
    const caFile = bridge.pki.file(DEV_PKI_FILES.issuingCaCert)
    await openssl(['crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout'])
    const certFile = join(bridge.pki.stateDir, 'revoked.crt')
    await writeFile(certFile, revoked.certificatePem)
    const check = await run('openssl', [
      'verify',
      '-crl_check',
      '-CAfile',
      caFile,
      '-CRLfile',
      crlFile,
      certFile,
    ])
    expect(check.stdout + check.stderr).toContain('certificate revoked')
    // the CRL is served next to the health endpoints, as DER at /crl
    const served = Buffer.from(
      await (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/crl`)).arrayBuffer(),
    )
    const pem = await readFile(crlFile, 'utf8')
    expect(served).toEqual(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
    const mosquitto = await production(bridge, [`crlfile ${crlFile}`])
    expect(await connects(mosquitto.url, asTls(kept))).toBe('accepted')
    expect(await connects(mosquitto.url, asTls(revoked))).not.toBe('accepted')
    // nor can it renew: the bridge refuses its connection at CONNECT (return code 5)
    expect(await connects(bridge.url, { ...asTls(revoked), caPem: await caPem(bridge) })).toBe(5)
    // a revoked identity cannot come back with its factory certificate until an operator resets it
    const again = await rejection(registerDevice(bridge, 'device-003'))
    expect(again.message).toContain('reset')
    expect((await cliRun(bridge, ['devices', 'reset', 'device-003'])).code).toBe(0)
    await registerDevice(bridge, 'device-003')
    const audit = (await bridge.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(audit.filter((r) => r.identity === 'device-003').map((r) => r.event)).toEqual([
      'registered',
      'revoked',
      'reset',
      're-registered',
    ])
  })

  it('a renewal from a connection opened before the revocation is refused', async () => {
    const current = await registerDevice(bridge, 'device-005')
    const client = await connectTls(bridge.url, { ...asTls(current), caPem: await caPem(bridge) })
    try {
      const reply = new Promise<Record<string, unknown>>((resolve) =>
        client.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
      )
      await client.subscribeAsync('registration/device-005/reply', { qos: 1 })
      expect((await cliRun(bridge, ['revoke', '--serial', current.serialNumber])).code).toBe(0)
      await client.publishAsync('registration/request', JSON.stringify({ requestId: 'late' }), { qos: 1 })
      expect(await reply).toMatchObject({
        status: 'rejected',
        error: { code: 'NOT_AUTHORIZED', message: 'this certificate is revoked' },
      })
    } finally {
      await client.endAsync(true)
    }
  })

  it('a factory retry after revocation is judged afresh: the revoked certificate and its key are not replayed', async () => {
    const b = await started(['lifecycle.reRegistration=refuse'])
    await registerDevice(b, 'device-001', 'rv-orig', false)
    const revoked = await cliRun(b, ['revoke', '--identity', 'device-001', '--reason', 'keyCompromise'])
    expect(revoked.code).toBe(0)
    const err = await rejection(registerDevice(b, 'device-001', 'rv-orig', false))
    expect(err.code).toBe('NOT_AUTHORIZED')
    expect(err.message).toContain('revoked')
  })

  it('devices counts and list --expiring show the registry by state', async () => {
    const counts = await cliRun(bridge, ['devices', 'counts', '--json', '--expiring', '3000h'])
    expect(counts.code).toBe(0)
    const parsed = JSON.parse(counts.stdout) as Record<string, number>
    expect(Object.keys(parsed)).toEqual(['active', 'expiring', 'expired', 'pending', 'revoked'])
    expect(parsed.expiring).toBeGreaterThanOrEqual(3)
    expect(parsed.active).toBe(0)
    // the same counts (with 7 days as "expiring") are a gauge on /metrics, counted again soon after an issuance
    const activeGauge = async (): Promise<number> => {
      const metrics = await (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/metrics`)).text()
      return Number(/^mqtt_registration_bridge_devices\{state="active"\} (\d+)$/m.exec(metrics)?.[1])
    }
    await expect.poll(activeGauge, { timeout: 5_000 }).toBe(parsed.expiring)
    const none = await cliRun(bridge, ['devices', 'list', '--expiring', '1h', '--json'])
    expect(JSON.parse(none.stdout)).toEqual([])
    const all = await cliRun(bridge, ['devices', 'list', '--expiring', '31d', '--json'])
    expect((JSON.parse(all.stdout) as unknown[]).length).toBeGreaterThanOrEqual(3)
  })
})

describe('deny list', () => {
  it('a denied factory certificate is refused at CONNECT (return code 5); the list reloads without a restart', async () => {
    const pki = await createTestPki()
    const denyFile = join(pki.stateDir, 'deny.yaml')
    const hex = new X509Certificate(await readFile(pki.device('device-005').certFile)).serialNumber
    // written the way openssl prints it: whole octets, colons
    const serial = hex.length % 2 ? `0${hex}` : hex
    await writeFile(denyFile, `serials: ["${serial.match(/../g)?.join(':')}"]\n`)
    const denying = await started([`lifecycle.denyListFile=${denyFile}`], pki)
    expect(await connects(denying.url, tlsFor(denying, denying.pki.device('device-005')))).toBe(5)
    expect(await connects(denying.url, tlsFor(denying, denying.pki.device('device-004')))).toBe('accepted')
    const reloaded = denying.waitForLog('deny list reloaded')
    await writeFile(denyFile, `serials: ["${serial}"]\nidentities: [device-004]\n`)
    await reloaded
    expect(await connects(denying.url, tlsFor(denying, denying.pki.device('device-004')))).toBe(5)
    const bad = denying.waitForLog('deny list refused; keeping the old one')
    await writeFile(denyFile, 'serials: [not-hex]\n')
    await bad
    expect(await connects(denying.url, tlsFor(denying, denying.pki.device('device-004')))).toBe(5)
  })
})

describe('deny list at request time', () => {
  it('a device connected before it was denied, and a denied downstream device, get NOT_AUTHORIZED', async () => {
    const pki = await createTestPki()
    const denyFile = join(pki.stateDir, 'deny.yaml')
    await writeFile(denyFile, 'identities: []\n')
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const b = await started([`lifecycle.denyListFile=${denyFile}`, `gateways.policyFile=${policy}`], pki)
    const device = await connectTls(b.url, tlsFor(b, b.pki.device('device-001')))
    const gateway = await connectTls(b.url, tlsFor(b, b.pki.device('gateway-001')))
    try {
      const reply = new Promise<Record<string, unknown>>((resolve) =>
        device.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
      )
      await device.subscribeAsync('registration/device-001/reply', { qos: 1 })
      const reloaded = b.waitForLog('deny list reloaded')
      await writeFile(denyFile, 'identities: [device-001, gateway-001-sensor-2]\n')
      await reloaded
      await device.publishAsync('registration/request', JSON.stringify({ requestId: 'late' }), { qos: 1 })
      expect(await reply).toMatchObject({
        status: 'rejected',
        error: { code: 'NOT_AUTHORIZED', message: 'the identity is on the deny list' },
      })
      const results = await registerDevices({
        url: b.url,
        ...tlsFor(b, b.pki.device('gateway-001')),
        client: gateway,
        devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'gateway-001-sensor-2' }],
        requestId: 'batch',
      })
      expect(results.map((r) => r.status)).toEqual(['issued', 'rejected'])
      const denied = results[1] as { error?: RegistrationRejectedError & { reason?: string } }
      expect(denied.error?.code).toBe('NOT_AUTHORIZED')
      expect(denied.error?.reason).toBe('DENY_LISTED')
    } finally {
      await device.endAsync(true)
      await gateway.endAsync(true)
    }
  })
})

describe('re-registration with the factory certificate', () => {
  it('refuse (the default): NOT_AUTHORIZED telling the device to renew; a retry of the same request is answered', async () => {
    const b = await started(['lifecycle.reRegistration=refuse'])
    const first = await registerDevice(b, 'device-001', 'first', false)
    const retry = await registerDevice(b, 'device-001', 'first', false)
    expect(retry.serialNumber).toBe(first.serialNumber)
    const err = await rejection(registerDevice(b, 'device-001', 'second'))
    expect(err.code).toBe('NOT_AUTHORIZED')
    expect(err.message).toContain('renew')
  })

  it('allow: a new registration supersedes the certificate held', async () => {
    const b = await started(['lifecycle.reRegistration=allow'])
    const first = await registerDevice(b, 'device-001', 'first')
    const second = await registerDevice(b, 'device-001', 'second')
    const registry = new SqliteRegistry(b.bridge.config.registry.file, { readonly: true })
    const record = await registry.certificate(first.serialNumber)
    await registry.close()
    expect(record).toMatchObject({ state: 'superseded', supersededBy: second.serialNumber })
  })

  it('after-reset: refused until an operator resets the identity, then allowed once', async () => {
    const b = await started(['lifecycle.reRegistration=after-reset'])
    await registerDevice(b, 'device-001', 'first')
    const err = await rejection(registerDevice(b, 'device-001', 'second'))
    expect(err.message).toContain('reset')
    expect((await cliRun(b, ['devices', 'reset', 'device-001'])).code).toBe(0)
    await registerDevice(b, 'device-001', 'third')
    await rejection(registerDevice(b, 'device-001', 'fourth'))
  })

  it('a factory request that only reuses the requestId of the newest certificate is refused', async () => {
    const b = await started(['lifecycle.reRegistration=refuse', 'lifecycle.renewal.windowFraction=1'])
    const first = await registerDevice(b, 'device-001', 'first')
    const renewed = await renew({
      url: b.url,
      certPem: first.certificatePem,
      keyPem: first.privateKeyPem,
      caPem: await caPem(b),
      requestId: 'renew-1',
      timeoutMs: 10_000,
    })
    const err = await rejection(registerDevice(b, 'device-001', 'renew-1', false))
    expect(err.code).toBe('NOT_AUTHORIZED')
    expect(err.message).toContain('renew')
    // the renewed certificate is still the identity's: it renews
    await renewWith(b, renewed)
  })
})

describe('downstream devices', () => {
  it('are renewed by the gateway that owns them, whatever lifecycle.reRegistration says', async () => {
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const b = await started(['lifecycle.reRegistration=refuse', `gateways.policyFile=${policy}`])
    const batch = (requestId: string) =>
      registerDevices({
        url: b.url,
        ...tlsFor(b, b.pki.device('gateway-001')),
        devices: [{ deviceId: 'gateway-001-sensor-1' }],
        requestId,
      })
    const [first] = await batch('batch-1')
    const [second] = await batch('batch-2')
    expect(first?.status).toBe('issued')
    expect(second?.status).toBe('issued')
    const audit = (await b.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(audit.filter((r) => r.identity === 'gateway-001-sensor-1').map((r) => r.event)).toEqual([
      'registered',
      'renewed',
    ])
  })
})

describe('gateway batches with an operational certificate', () => {
  it('are answered only while the certificate is the current one of the gateway', async () => {
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const b = await started([
      'lifecycle.reRegistration=refuse',
      'lifecycle.renewal.windowFraction=1',
      `gateways.policyFile=${policy}`,
    ])
    const first = await registerDevice(b, 'gateway-001')
    const second = await renewWith(b, first)
    const batch = async (current: Registration, requestId: string) =>
      registerDevices({
        url: b.url,
        certPem: current.certificatePem,
        keyPem: current.privateKeyPem,
        caPem: await caPem(b),
        devices: [{ deviceId: 'gateway-001-sensor-1' }],
        requestId,
      })
    const stale = await rejection(batch(first, 'old-cert'))
    expect(stale.code).toBe('NOT_AUTHORIZED')
    expect(stale.message).toContain('superseded')
    const [issued] = await batch(second, 'new-cert')
    expect(issued?.status).toBe('issued')
  })
})

describe('the CLI', () => {
  it('register --renew renews from the files an earlier registration wrote, and replaces them', async () => {
    const b = await started(['lifecycle.renewal.windowFraction=1'])
    const out = join(b.pki.stateDir, 'credentials', 'device-002')
    const url = b.url
    const first = await cliRun(b, ['register', '--device', 'device-002', '--url', url, '--csr', '--out', out])
    expect(first.code).toBe(0)
    const before = await readFile(join(out, 'device.crt'), 'utf8')
    const beforeKey = await readFile(join(out, 'device.key'), 'utf8')
    const renewed = await cliRun(b, [
      'register',
      '--renew',
      '--url',
      url,
      '--cert',
      join(out, 'device.crt'),
      '--key',
      join(out, 'device.key'),
    ])
    expect(renewed.stderr).toBe('')
    expect(renewed.code).toBe(0)
    const after = await readFile(join(out, 'device.crt'), 'utf8')
    expect(after).not.toBe(before)
    const key = await readFile(join(out, 'device.key'), 'utf8')
    // the files belong together: the new key is the new certificate's
    const { createPrivateKey } = await import('node:crypto')
    expect(new X509Certificate(after).checkPrivateKey(createPrivateKey(key))).toBe(true)
    const mosquitto = await production(b)
    expect(await connects(mosquitto.url, { certPem: after, keyPem: key, caPem: await caPem(b) })).toBe(
      'accepted',
    )
    // the old certificate is superseded: renewing with it again is refused
    await writeFile(join(out, 'old.crt'), before)
    await writeFile(join(out, 'old.key'), beforeKey)
    const oldFiles = ['--cert', join(out, 'old.crt'), '--key', join(out, 'old.key'), '--out', join(out, 'x')]
    const stale = await cliRun(b, ['register', '--renew', '--url', url, ...oldFiles])
    expect(stale.stderr).toContain('NOT_AUTHORIZED')
    expect(stale.code).toBe(1)
  })
})
