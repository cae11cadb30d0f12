import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { connectTls, type DeviceTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { Reply } from '../../src/protocol/messages.js'
import { type CliBridge, startCliBridge } from '../support/cli-bridge.js'
import { opensslCsr } from '../support/csr.js'
import { writePolicy } from '../support/gateway.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/**
 * Exactly once across a crash: the real CLI is SIGKILLed while 50 devices register at once, restarted on the
 * same state directory, and every device retries its request. The audit log then tells how many certificates
 * each identity got.
 */
const DEVICES = 50

interface Device {
  readonly id: string
  readonly tls: DeviceTls
  readonly payload: string
}

interface AuditEntry {
  identity: string
  serialNumber: string
  requestId?: string
  requestHash?: string
  supersedes?: string
}

async function makeDevices(pki: TestPki, mode: 'csr' | 'server-key'): Promise<Device[]> {
  const caPem = await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  const devices: Device[] = []
  for (let i = 0; i < DEVICES; i++) {
    const id = `sensor-${i}`
    const files = await pki.makeDevice(id)
    const tls = {
      certPem: await readFile(files.certFile, 'utf8'),
      keyPem: await readFile(files.keyFile, 'utf8'),
      caPem,
    }
    const csr = mode === 'csr' ? (await opensslCsr(`/CN=${id}`)).csr : undefined
    devices.push({ id, tls, payload: JSON.stringify({ requestId: `r-${id}`, ...(csr ? { csr } : {}) }) })
  }
  return devices
}

/** request connects, subscribes, sends the device's request and calls back with its final reply. */
async function request(bridge: CliBridge, device: Device, onReply: (r: Reply) => void): Promise<MqttClient> {
  const client = await connectTls(bridge.url, device.tls)
  client.on('error', () => {})
  client.on('message', (_t, payload) => {
    const reply = JSON.parse(payload.toString('utf8')) as Reply
    if (reply.status !== 'pending') onReply(reply)
  })
  await client.subscribeAsync(`registration/${device.id}/reply`, { qos: 1 })
  await client.publishAsync('registration/request', device.payload, { qos: 1 })
  return client
}

let running: CliBridge | undefined
afterEach(async () => {
  running?.process.signal('SIGKILL')
  await running?.process.exited
  running = undefined
})

describe.each(['csr', 'server-key'] as const)(
  'SIGKILL during 50 concurrent registrations (%s mode)',
  (mode) => {
    it('a retry after restart never double-issues silently', async () => {
      const pki = await createTestPki()
      const devices = await makeDevices(pki, mode)
      running = await startCliBridge(pki.stateDir)
      const before = new Map<string, Reply>()
      const issuedOnce = running.process.waitFor(/certificate issued/)
      const clients = await Promise.all(
        devices.map((d) => request(running as CliBridge, d, (r) => before.set(d.id, r))),
      )
      await issuedOnce
      running.process.signal('SIGKILL') // mid-way: some issued and answered, some issued only, some not started
      await running.process.exited
      await Promise.all(clients.map((c) => c.endAsync(true)))

      running = await startCliBridge(pki.stateDir)
      const after = new Map<string, Reply>()
      const answered = devices.map(
        (d) =>
          new Promise<MqttClient>((resolve, reject) => {
            let client: MqttClient | undefined
            request(running as CliBridge, d, (r) => {
              after.set(d.id, r)
              if (client) resolve(client)
              else setImmediate(() => client && resolve(client))
            }).then((c) => {
              client = c
              if (after.has(d.id)) resolve(c)
            }, reject)
          }),
      )
      for (const c of await Promise.all(answered)) await c.endAsync()

      const audit = (await readFile(join(pki.stateDir, 'audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditEntry)
      const byIdentity = new Map<string, AuditEntry[]>()
      for (const r of audit) byIdentity.set(r.identity, [...(byIdentity.get(r.identity) ?? []), r])
      let seconds = 0
      for (const d of devices) {
        const reply = after.get(d.id)
        expect(reply?.status, d.id).toBe('issued')
        if (reply?.status !== 'issued') continue
        const records = byIdentity.get(d.id) ?? []
        // every certificate a device holds is in the audit log, with its requestId and request hash
        const mine = records.find((r) => r.serialNumber === reply.serialNumber)
        expect(mine, d.id).toMatchObject({
          requestId: `r-${d.id}`,
          requestHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        })
        const first = before.get(d.id)
        if (mode === 'csr') {
          expect(records, d.id).toHaveLength(1) // 0 second certificates
          if (first?.status === 'issued') expect(reply.serialNumber).toBe(first.serialNumber)
        } else {
          expect(records.length, d.id).toBeLessThanOrEqual(2)
          if (records.length === 2) {
            seconds++
            expect(records[1]?.supersedes, d.id).toBe(records[0]?.serialNumber) // every second issuance is linked
            expect(records[1]?.serialNumber).toBe(reply.serialNumber)
          }
        }
      }
      if (mode === 'server-key') expect(seconds).toBeGreaterThan(0) // the crash came after some issuances
    })
  },
)

describe('SIGKILL after a gateway batch, then the same batch again', () => {
  it('CSR-mode sensors get the same certificate; server-key sensors a new one that supersedes the first', async () => {
    const pki = await createTestPki()
    const policyFile = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const gatewayFiles = await pki.makeDevice('gateway-001')
    const tls = {
      certPem: await readFile(gatewayFiles.certFile, 'utf8'),
      keyPem: await readFile(gatewayFiles.keyFile, 'utf8'),
      caPem: await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
    }
    const csr = (await opensslCsr('/CN=gateway-001-sensor-csr')).csr
    const batch = JSON.stringify({
      extension: 'gateway/1',
      requestId: 'crash-batch',
      devices: [{ deviceId: 'gateway-001-sensor-csr', csr }, { deviceId: 'gateway-001-sensor-key' }],
    })
    const send = async (): Promise<Map<string, Record<string, string>>> => {
      running = await startCliBridge(pki.stateDir, ['--set', `gateways.policyFile=${policyFile}`])
      const client = await connectTls(running.url, tls)
      const results = new Map<string, Record<string, string>>()
      const complete = new Promise<void>((resolve) =>
        client.on('message', (_t, payload) => {
          const reply = JSON.parse(payload.toString('utf8')) as Record<string, string>
          if (reply.deviceId) results.set(reply.deviceId, reply)
          if (reply.status === 'complete') resolve()
        }),
      )
      await client.subscribeAsync('registration/gateway-001/reply', { qos: 1 })
      await client.publishAsync('registration/request', batch, { qos: 1 })
      await complete
      await client.endAsync(true)
      running.process.signal('SIGKILL') // a crash: the in-memory reply caches are gone
      await running.process.exited
      running = undefined
      return results
    }
    const first = await send()
    const second = await send()
    expect(second.get('gateway-001-sensor-csr')?.status).toBe('issued')
    expect(second.get('gateway-001-sensor-csr')?.serialNumber).toBe(
      first.get('gateway-001-sensor-csr')?.serialNumber,
    )
    expect(second.get('gateway-001-sensor-key')?.status).toBe('issued')
    const audit = (await readFile(join(pki.stateDir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry)
    expect(audit.filter((r) => r.identity === 'gateway-001-sensor-csr')).toHaveLength(1)
    const keys = audit.filter((r) => r.identity === 'gateway-001-sensor-key')
    expect(keys).toHaveLength(2)
    expect(keys[1]?.supersedes).toBe(keys[0]?.serialNumber)
    expect(keys[1]?.serialNumber).toBe(second.get('gateway-001-sensor-key')?.serialNumber)
  })
})
