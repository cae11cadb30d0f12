import { readFile } from 'node:fs/promises'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls, type DownstreamCredentials } from '../../src/client/register.js'
import { registerDevices } from '../../src/client/register-devices.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { writePolicy } from '../support/gateway.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'

const examples = new URL('../../docs/examples/', import.meta.url).pathname

let bridge: TestBridge
let production: Mosquitto
const credentials = new Map<string, DownstreamCredentials>()

beforeAll(async () => {
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([`gateways.policyFile=${policy}`])
  const conf = await readFile(`${examples}production-mosquitto-gateways.conf`, 'utf8')
  expect(conf).toContain('acl_file docs/examples/production-acl.conf')
  production = await startMosquitto({
    cafile: bridge.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: bridge.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: bridge.pki.file(DEV_PKI_FILES.serverKey),
    extra: [`acl_file ${examples}production-acl.conf`],
  })
  const outcomes = await registerDevices({
    url: bridge.url,
    ...tlsFor(bridge, bridge.pki.device('gateway-001')),
    devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'gateway-001-sensor-2' }],
  })
  for (const o of outcomes) if (o.status === 'issued') credentials.set(o.deviceId, o.credentials)
})

afterAll(async () => {
  await bridge?.stop()
  await production?.stop()
})

function connectAs(id: string): Promise<MqttClient> {
  const c = credentials.get(id)
  if (!c?.privateKeyPem) throw new Error(`no credentials for ${id}`)
  return connectTls(production.url, {
    certPem: c.certificatePem,
    keyPem: c.privateKeyPem,
    caPem: c.caCertificatesPem,
  })
}

describe('the production broker example for gateways', () => {
  it('a sensor connects with the certificate its gateway obtained, and reaches only its own topics', async () => {
    const one = await connectAs('gateway-001-sensor-1')
    const two = await connectAs('gateway-001-sensor-2')
    try {
      const seen: string[] = []
      const marker = new Promise<void>((resolve) =>
        two.on('message', (topic, payload) => {
          seen.push(`${topic} ${payload.toString()}`)
          if (payload.toString() === 'marker') resolve()
        }),
      )
      // mosquitto grants a subscription its ACL forbids, and then delivers nothing on it
      await two.subscribeAsync(['sensors/gateway-001-sensor-1/#', 'sensors/gateway-001-sensor-2/#'], {
        qos: 1,
      })
      await one.publishAsync('sensors/gateway-001-sensor-1/telemetry', 'not for two', { qos: 1 })
      await one.publishAsync('sensors/gateway-001-sensor-2/commands', 'forged', { qos: 1 })
      // QoS 1 publishes acknowledged in order through one broker: anything delivered to two comes before this
      await two.publishAsync('sensors/gateway-001-sensor-2/telemetry', 'marker', { qos: 1 })
      await marker
      expect(seen).toEqual(['sensors/gateway-001-sensor-2/telemetry marker'])
    } finally {
      await one.endAsync(true)
      await two.endAsync(true)
    }
  })

  it("a sensor's own messages flow; a factory certificate is refused", async () => {
    const writer = await connectAs('gateway-001-sensor-1')
    try {
      await writer.subscribeAsync('sensors/gateway-001-sensor-1/#', { qos: 1 })
      const received = new Promise<string>((resolve) =>
        writer.once('message', (_t, p) => resolve(p.toString())),
      )
      await writer.publishAsync('sensors/gateway-001-sensor-1/telemetry', '21.5', { qos: 1 })
      expect(await received).toBe('21.5')
    } finally {
      await writer.endAsync(true)
    }
    await expect(
      connectTls(production.url, tlsFor(bridge, bridge.pki.device('gateway-001'))),
    ).rejects.toThrow()
  })
})
