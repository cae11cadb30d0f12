import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { run } from '../support/tools.js'

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge()
})
afterAll(() => bridge?.stop())

function options(id: string) {
  const tls = tlsFor(bridge, bridge.pki.device(id))
  return { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0 }
}

async function registerWith(client: mqtt.MqttClient, qos: 0 | 1 | 2): Promise<Reply & { qos: number }> {
  const reply = new Promise<Reply & { qos: number }>((resolve) =>
    client.on('message', (_t, payload, packet) => {
      const r = JSON.parse(payload.toString('utf8')) as Reply
      if (r.status !== 'pending') resolve({ ...r, qos: packet.qos })
    }),
  )
  await client.publishAsync('registration/request', JSON.stringify({ requestId: `q${qos}` }), { qos })
  return reply
}

it('a QoS 2 request is answered; a QoS 2 subscription is granted, and the reply arrives at QoS 1', async () => {
  const client = await mqtt.connectAsync(bridge.url, { ...options('device-001'), protocolVersion: 4 })
  const [granted] = await client.subscribeAsync('registration/device-001/reply', { qos: 2 })
  expect(granted?.qos).toBe(2)
  expect(await registerWith(client, 2)).toMatchObject({ status: 'issued', requestId: 'q2', qos: 1 })
  await client.endAsync()
})

it('an MQTT 3.1 (protocol level 3) client registers like a 3.1.1 one', async () => {
  const client = await mqtt.connectAsync(bridge.url, {
    ...options('device-002'),
    protocolId: 'MQIsdp',
    protocolVersion: 3,
    clientId: 'dev2-v31',
  })
  await client.subscribeAsync('registration/device-002/reply', { qos: 1 })
  expect(await registerWith(client, 1)).toMatchObject({ status: 'issued', requestId: 'q1' })
  await client.endAsync()
})

it('mosquitto_pub speaking MQTT 3.1 is accepted', async () => {
  const files = bridge.pki.device('device-003')
  const result = await run('mosquitto_pub', [
    ...['-h', 'localhost', '-p', String(bridge.port), '-V', 'mqttv31', '-i', 'dev3-v31'],
    ...['--cafile', bridge.pki.file('issuing-ca.crt'), '--cert', files.certFile, '--key', files.keyFile],
    ...['-t', 'registration/request', '-q', '1', '-m', '{"requestId":"v31"}'],
  ])
  expect(result.code, result.stderr).toBe(0)
})

it('MQTT 5 is refused with CONNACK 1 (unacceptable protocol version)', async () => {
  const refused = await mqtt.connectAsync(bridge.url, { ...options('device-004'), protocolVersion: 5 }).then(
    (c) => c.endAsync().then(() => 'connected'),
    (err: { code?: number; message?: string }) => err.code ?? err.message,
  )
  expect(refused).toBe(1)
})
