import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  connectTls,
  type DownstreamCredentials,
  type Registration,
  renew,
} from '../../src/client/register.js'
import { registerDevices } from '../../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { writePolicy } from '../support/gateway.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/**
 * A credential is what it was issued as, and no more: an operational certificate acts only as the identity it was
 * issued to, however its names read; a device a gateway registered stays that gateway's through its own renewals;
 * an identity a gateway registered never acts as a gateway; a certificate on the deny list is never handed out
 * again. Found by an adversarial review; each case is one it reproduced.
 */
const bridges: TestBridge[] = []
afterAll(async () => {
  for (const b of bridges) await b.stop()
})

async function started(pki: TestPki, sets: string[]): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

const caPem = async (b: TestBridge): Promise<string> =>
  (await import('node:fs/promises')).readFile(b.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')

/** connects says whether the bridge accepts a connection with these credentials, or its CONNACK code. */
async function connects(b: TestBridge, tls: { certPem: string; keyPem: string; caPem: string }) {
  try {
    const client = await connectTls(b.url, tls, 5_000)
    await client.endAsync(true)
    return 'accepted'
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

async function gatewayIssues(b: TestBridge, gateway: string, requestId: string, deviceId: string) {
  const [outcome] = await registerDevices({
    url: b.url,
    ...tlsFor(b, b.pki.device(gateway)),
    devices: [{ deviceId }],
    requestId,
  })
  return outcome
}

const asTls = async (b: TestBridge, c: DownstreamCredentials | Registration) => ({
  certPem: c.certificatePem,
  keyPem: c.privateKeyPem ?? '',
  caPem: await caPem(b),
})

describe('an operational certificate is the identity it was issued to', () => {
  it('identity.source=san-dns: a downstream certificate whose DNS name reads as a gateway is refused at CONNECT', async () => {
    const pki = await createTestPki()
    for (const g of ['gw1', 'gw2']) await pki.makeDevice(g, { commonName: g, dnsNames: [`${g}.example.com`] })
    const policy = await writePolicy(
      'gateways:\n  - match: "gw*.example.com"\n    devices: { patterns: ["s-*", "gw*"] }\n',
    )
    const b = await started(pki, [
      'identity.source=san-dns',
      'certificate.dnsNames={deviceId}.example.com',
      `gateways.policyFile=${policy}`,
    ])
    // gw1 names "gw2": a downstream device whose certificate carries DNS:gw2.example.com, the other gateway's name
    const outcome = await registerDevices({
      url: b.url,
      ...tlsFor(b, pki.device('gw1')),
      identity: 'gw1.example.com',
      devices: [{ deviceId: 'gw2' }],
      requestId: 'spoof',
    })
    expect(outcome[0]?.status).toBe('issued')
    const credentials = (outcome[0] as { credentials: DownstreamCredentials }).credentials
    // read by identity.source, that certificate says gw2.example.com; it was issued to gw2: refused (rc 5)
    expect(await connects(b, await asTls(b, credentials))).toBe(5)
  })
})

describe('a device a gateway registered stays its gateway’s through its own renewals', () => {
  it('the owner renews it after the device renewed itself; a gateway with adopt but no transfer may not take it', async () => {
    const pki = await createTestPki()
    for (const g of ['hub-1']) await pki.makeDevice(g)
    const policy = await writePolicy(`
gateways:
  - match: gateway-001
    devices: { patterns: ["sensor-*"] }
  - match: hub-1
    devices: { patterns: ["sensor-*"] }
    adopt: true
`)
    const b = await started(pki, [`gateways.policyFile=${policy}`, 'lifecycle.renewal.windowFraction=1'])
    const first = await gatewayIssues(b, 'gateway-001', 'g1', 'sensor-q')
    expect(first?.status).toBe('issued')
    const held = (first as { credentials: DownstreamCredentials }).credentials
    const renewed = await renew({ url: b.url, ...(await asTls(b, held)), timeoutMs: 10_000 })
    expect(renewed.serialNumber).not.toBe(held.serialNumber)
    expect(await gatewayIssues(b, 'hub-1', 'h1', 'sensor-q')).toMatchObject({
      status: 'rejected',
      error: { reason: 'OWNED_BY_ANOTHER_GATEWAY' },
    })
    expect((await gatewayIssues(b, 'gateway-001', 'g2', 'sensor-q'))?.status).toBe('issued')
    const registry = new SqliteRegistry(b.bridge.config.registry.file, { readonly: true })
    expect(await registry.ownerOf('sensor-q')).toBe('gateway-001')
    await registry.close()
  })
})

describe('an identity a gateway registered never acts as a gateway', () => {
  it('after the policy makes it one, its certificate (and the one it renews to) sends no batches', async () => {
    const pki = await createTestPki()
    const open = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["relay-*"] }\n',
    )
    const before = await started(pki, [`gateways.policyFile=${open}`, 'lifecycle.renewal.windowFraction=1'])
    const outcome = await gatewayIssues(before, 'gateway-001', 'r1', 'relay-6')
    const credentials = (outcome as { credentials: DownstreamCredentials }).credentials
    await before.stop()
    const widened = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["relay-*"] }\n  - match: "relay-*"\n    devices: { patterns: ["zz-*"] }\n',
    )
    const after = await started(pki, [`gateways.policyFile=${widened}`, 'lifecycle.renewal.windowFraction=1'])
    const batchAs = async (tls: { certPem: string; keyPem: string; caPem: string }, requestId: string) =>
      registerDevices({
        url: after.url,
        ...tls,
        identity: 'relay-6',
        devices: [{ deviceId: 'zz-1' }],
        requestId,
      })
    const owned = {
      code: 'NOT_AUTHORIZED',
      message: expect.stringContaining('registered this identity as its device'),
    }
    await expect(batchAs(await asTls(after, credentials), 'as-relay')).rejects.toMatchObject(owned)
    const renewed = await renew({ url: after.url, ...(await asTls(after, credentials)), timeoutMs: 10_000 })
    await expect(batchAs(await asTls(after, renewed), 'as-relay-2')).rejects.toMatchObject(owned)
  })
})

describe('the deny list', () => {
  it('a certificate whose serial is denied is neither replayed nor replaced for the same request', async () => {
    const pki = await createTestPki()
    const denyFile = join(pki.stateDir, 'deny.yaml')
    await writeFile(denyFile, 'identities: []\n')
    const b = await started(pki, [`lifecycle.denyListFile=${denyFile}`])
    const ask = async (): Promise<IssuedReply | { status: string; error?: { code: string } }> => {
      const device = await connectDevice(b, 'device-003')
      await device.send({ requestId: 'dl' })
      const reply = await device.nextReply()
      await device.end()
      return reply as IssuedReply
    }
    const first = (await ask()) as IssuedReply
    expect(first.status).toBe('issued')
    const reloaded = b.waitForLog('deny list reloaded')
    await writeFile(denyFile, `serials: ["${first.serialNumber}"]\n`)
    await reloaded
    for (let i = 0; i < 2; i++) {
      expect(await ask()).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED' } })
    }
    const registry = new SqliteRegistry(b.bridge.config.registry.file, { readonly: true })
    expect((await registry.device('device-003'))?.certificates.map((c) => c.serialNumber)).toEqual([
      first.serialNumber,
    ])
    await registry.close()
  })
})
