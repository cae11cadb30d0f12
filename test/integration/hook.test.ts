import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { register, renew } from '../../src/client/register.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, mosquittoArgs, tlsFor } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import {
  type HookCallBody,
  type HookResponse,
  hookSettings,
  type RunningHook,
  startTestHook,
} from '../support/hook.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { start } from '../support/process.js'
import { openssl, run } from '../support/tools.js'

/**
 * The registration hook through the embedded CA, against the example hook (examples/registration-hook.mjs) on a
 * real HTTPS port: allow, deny, narrowing, an assigned endpoint (also replayed after a restart), a gateway batch
 * (each device asks) and a renewal.
 */
const INVENTORY = {
  devices: {
    'device-001': {},
    'device-003': { validityHours: 2, dnsNames: [], endpoint: 'mqtts://eu-3.production.example:8883' },
    'gateway-001': {},
    'gateway-001/gateway-001-sensor-1': { endpoint: 'mqtts://gateways.production.example:8883' },
    'renewer-1': { endpoint: 'mqtts://renewals.production.example:8883' },
    'cli-1': {},
  },
}

let pki: TestPki
let hook: RunningHook
let bridge: TestBridge
let settings: string[]
/** decide answers the next calls instead of the inventory, when set. */
let decide: ((call: HookCallBody) => HookResponse) | undefined

const callsFor = (identity: string): HookCallBody[] => hook.calls.filter((c) => c.identity === identity)

beforeAll(async () => {
  pki = await createTestPki()
  const { inventoryDecision } = await import('../../examples/registration-hook.mjs')
  const inventory = inventoryDecision(INVENTORY)
  hook = await startTestHook(pki, { decide: (call) => (decide ?? inventory)(call) })
  await pki.makeDevice('renewer-1')
  await pki.makeDevice('cli-1')
  const policy = await writePolicy(`
gateways:
  - match: gateway-001
    devices: { patterns: ["{gateway}-sensor-*"] }
`)
  settings = hookSettings(hook, pki, [
    'certificate.dnsNames={deviceId}.devices.example',
    'certificate.uris=urn:device:{deviceId}',
    'production.url=mqtts://default.production.example:8883',
    `gateways.policyFile=${policy}`,
    'lifecycle.renewal.windowFraction=1',
  ])
  bridge = await startTestBridge(settings, pki)
})

afterAll(async () => {
  await bridge?.stop()
  await hook?.close()
})

describe('a registration hook (embedded CA)', () => {
  it('allow: the device is issued; the hook was asked once, with the identity, kind and template', async () => {
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, pki.device('device-001')),
      csr: true,
    })
    expect(registration.endpointUrl).toBe('mqtts://default.production.example:8883') // none assigned
    expect(callsFor('device-001')).toEqual([
      expect.objectContaining({
        version: 1,
        identity: 'device-001',
        kind: 'registration',
        event: 'registered',
        gateway: null,
        keySource: 'csr',
        keyAlgorithm: 'ECDSA-P256',
        renewing: null,
        certificate: {
          commonName: 'device-001',
          organization: null,
          dnsNames: ['device-001.devices.example'],
          uris: ['urn:device:device-001'],
          validityHours: 720,
        },
      }),
    ])
  })

  it('deny: the device gets REGISTRATION_DENIED with the reason, sanitised and bounded; nothing is issued', async () => {
    const device = await connectDevice(bridge, 'device-002')
    await device.send({ requestId: 'denied-1' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      requestId: 'denied-1',
      error: { code: 'REGISTRATION_DENIED', message: 'device-002 is not in the inventory', retryable: false },
    })
    decide = () => ({
      body: { allow: false, reason: `no\u0000 such\r\n\u001b[31mdevice ${'x'.repeat(500)}` },
    })
    await device.send({ requestId: 'denied-2' })
    const reply = await device.nextReply()
    decide = undefined
    await device.end()
    const message = reply.status === 'rejected' ? reply.error.message : ''
    expect(message).toMatch(/^no such \[31mdevice x+$/)
    expect([...message].length).toBe(200)
    expect(bridge.logs.join('\n')).not.toMatch(/\\u0000|\\u001b/)
    const denied = bridge.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'registration hook denied')
    expect(denied.map((l) => [l.identity, l.reason.slice(0, 20)])).toEqual([
      ['device-002', 'device-002 is not in'],
      ['device-002', 'no such [31mdevice x'],
    ])
    expect(bridge.logs.some((l) => l.includes('certificate issued') && l.includes('device-002'))).toBe(false)
  })

  it('narrowing and an endpoint: openssl shows the narrowed certificate; the reply names the endpoint', async () => {
    const registration = await register({
      url: bridge.url,
      ...tlsFor(bridge, pki.device('device-003')),
      csr: true,
    })
    expect(registration.endpointUrl).toBe('mqtts://eu-3.production.example:8883')
    const audited = (await bridge.auditLines())
      .map((l) => JSON.parse(l))
      .find((l) => l.identity === 'device-003')
    expect(audited).toMatchObject({
      serialNumber: registration.serialNumber,
      endpoint: 'mqtts://eu-3.production.example:8883',
    })
    const file = join(pki.stateDir, 'device-003-issued.crt')
    await writeFile(file, registration.certificatePem)
    const text = await openssl(['x509', '-in', file, '-noout', '-text'])
    expect(text).toContain('URI:urn:device:device-003')
    expect(text).not.toContain('DNS:')
    const hours = (Date.parse(registration.notAfter) - Date.parse(registration.notBefore)) / 3600_000
    expect(hours).toBeGreaterThan(2) // backdated a minute for slow device clocks
    expect(hours).toBeLessThan(2.1)
  })

  it('a gateway batch: each device asks the hook (with its gateway); each gets its own answer', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const batch = {
      requestId: 'batch-hook',
      devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'gateway-001-sensor-2' }],
    }
    const replies = await gateway.batch(batch)
    // the same batch again: the issued device is answered from the reply cache, with its endpoint, not asked again
    const again = byDevice(await gateway.batch(batch))
    await gateway.end()
    expect(again.get('gateway-001-sensor-1')).toMatchObject({
      status: 'issued',
      endpoint: { url: 'mqtts://gateways.production.example:8883' },
    })
    const results = byDevice(replies)
    expect(results.get('gateway-001-sensor-1')).toMatchObject({
      status: 'issued',
      endpoint: { url: 'mqtts://gateways.production.example:8883' },
    })
    expect(results.get('gateway-001-sensor-2')).toMatchObject({
      status: 'rejected',
      error: { code: 'REGISTRATION_DENIED', message: 'gateway-001-sensor-2 is not in the inventory' },
    })
    expect(again.get('gateway-001-sensor-1')?.serialNumber).toBe(
      results.get('gateway-001-sensor-1')?.serialNumber,
    )
    expect(callsFor('gateway-001-sensor-1')).toEqual([
      expect.objectContaining({ gateway: 'gateway-001', kind: 'registration' }),
    ])
    // a denied device is asked again on a retry: nothing was issued, the answer may change
    expect(callsFor('gateway-001-sensor-2')).toHaveLength(2)
  })

  it('a renewal asks the hook as a renewal, naming the certificate it renews', async () => {
    const first = await register({ url: bridge.url, ...tlsFor(bridge, pki.device('renewer-1')) })
    const caPem = tlsFor(bridge, pki.device('renewer-1')).caPem
    const second = await renew({
      url: bridge.url,
      certPem: first.certificatePem,
      keyPem: first.privateKeyPem,
      caPem,
    })
    expect(second.endpointUrl).toBe('mqtts://renewals.production.example:8883')
    expect(callsFor('renewer-1').map((c) => [c.kind, c.event, c.renewing])).toEqual([
      ['registration', 'registered', null],
      ['renewal', 'renewed', first.serialNumber],
    ])
  })

  it('foreign clients: the CLI is issued or refused as the hook says; mosquitto_sub sees the denial', async () => {
    const cli = new URL('../../dist/cli.js', import.meta.url).pathname
    const cwd = await mkdtemp(join(tmpdir(), 'mrb-hook-cli-'))
    const registerCli = (device: string) =>
      run('node', [cli, 'register', '--url', bridge.url, '--state-dir', pki.stateDir, '--device', device], {
        timeoutMs: 30_000,
        cwd,
      })
    const allowed = await registerCli('cli-1')
    expect(allowed.code, allowed.stderr).toBe(0)
    const denied = await registerCli('device-004')
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('REGISTRATION_DENIED')
    expect(denied.stderr).toContain('device-004 is not in the inventory')

    const auth = mosquittoArgs(bridge, 'device-005')
    const sub = start('stdbuf', [
      ...['-oL', 'mosquitto_sub', ...auth, '-d', '-q', '1', '-t', 'registration/device-005/reply'],
      ...['-C', '1', '-W', '20'],
    ])
    await sub.waitFor(/received SUBACK/)
    const body = JSON.stringify({ requestId: 'hook-m-1' })
    expect(
      (await run('mosquitto_pub', [...auth, '-q', '1', '-t', 'registration/request', '-m', body])).code,
    ).toBe(0)
    expect(await sub.exited).toBe(0)
    const reply = JSON.parse(
      sub
        .output()
        .split('\n')
        .find((l) => l.startsWith('{')) ?? '{}',
    )
    expect(reply).toMatchObject({
      status: 'rejected',
      requestId: 'hook-m-1',
      error: { code: 'REGISTRATION_DENIED', message: 'device-005 is not in the inventory', retryable: false },
    })
  })

  it('the assigned endpoint is replayed after a restart (CSR mode), without asking the hook again', async () => {
    await pki.makeDevice('restarter-1')
    const device = await connectDevice(bridge, 'restarter-1')
    const body = { requestId: 'restart-1', csr: (await opensslCsr('/CN=restarter-1')).csr }
    decide = () => ({ body: { allow: true, endpoint: { url: 'mqtts://restart.production.example:8883' } } })
    await device.send(body)
    const first = await device.nextReply()
    await device.end()
    expect(first).toMatchObject({
      status: 'issued',
      endpoint: { url: 'mqtts://restart.production.example:8883' },
    })
    expect(callsFor('restarter-1')).toHaveLength(1)
    decide = () => ({ body: { allow: false, reason: 'the hook would deny now' } })
    await bridge.stop()
    bridge = await startTestBridge(settings, pki)
    const again = await connectDevice(bridge, 'restarter-1')
    await again.send(body)
    const replayed = await again.nextReply()
    await again.end()
    decide = undefined
    expect(replayed).toMatchObject({
      status: 'issued',
      serialNumber: first.status === 'issued' ? first.serialNumber : 'none',
      endpoint: { url: 'mqtts://restart.production.example:8883' },
    })
    expect(callsFor('restarter-1')).toHaveLength(1)
  })
})
