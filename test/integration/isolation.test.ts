import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, grantedQos, tlsFor } from '../support/device.js'
import { rawConnect as rawTls } from '../support/raw-mqtt.js'

let bridge: TestBridge

beforeAll(async () => {
  bridge = await startTestBridge(['registration.rateLimit.burst=1000'])
})

afterAll(async () => {
  await bridge?.stop()
})

/** rawConnect connects with full control over the CONNECT packet; resolves with the CONNACK or the refusal. */
function rawConnect(
  id: string,
  options: mqtt.IClientOptions,
): Promise<{ client: mqtt.MqttClient; connack?: mqtt.IConnackPacket; error?: Error & { code?: number } }> {
  const tls = tlsFor(bridge, bridge.pki.device(id))
  const client = mqtt.connect(bridge.url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    key: tls.keyPem,
    cert: tls.certPem,
    ca: tls.caPem,
    ...options,
  })
  return new Promise((resolve) => {
    client.once('connect', (connack) => resolve({ client, connack }))
    client.once('error', (error) => resolve({ client, error }))
  })
}

describe('subscriptions', () => {
  it.each([
    'registration/device-002/reply',
    '#',
    'registration/+/reply',
    'registration/#',
    '$SYS/#',
    'registration/request',
    '+/+/+',
  ])('device-001 may not subscribe to %s', async (topic) => {
    const a = await connectDevice(bridge, 'device-001')
    expect(await grantedQos(a.client, topic, 1)).toBe(128)
    expect(a.client.connected).toBe(true)
    await a.end()
  })

  it('grants the own reply topic; replies arrive at QoS 1 and never retained', async () => {
    const a = await connectDevice(bridge, 'device-001', { subscribe: false })
    expect(await grantedQos(a.client, 'registration/device-001/reply', 2)).toBe(2)
    const packet = new Promise<mqtt.IPublishPacket>((resolve) =>
      a.client.once('message', (_t, _p, pkt) => resolve(pkt)),
    )
    await a.send({})
    expect(await packet).toMatchObject({ qos: 1, retain: false })
    await a.end()
  })
})

describe('publishing', () => {
  it.each(['registration/device-002/reply', 'registration/device-001/reply', 'other/topic'])(
    'publishing to %s disconnects the publisher and reaches nobody',
    async (topic) => {
      const b = await connectDevice(bridge, 'device-002')
      const { client } = await rawConnect('device-001', {})
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
      client.publish(topic, JSON.stringify({ status: 'issued', certificate: 'forged' }), { qos: 1 })
      await closed
      // B's own round trip completes after the forged publish; nothing else arrived before it
      await b.send({ requestId: 'after-forgery' })
      const reply = await b.nextReply()
      expect(reply).toMatchObject({ status: 'issued', requestId: 'after-forgery' })
      expect(b.replies).toHaveLength(1)
      await b.end()
      client.end(true)
    },
  )

  it('a retained request is answered and never retained', async () => {
    await bridge.pki.makeDevice('device-retained')
    const a = await connectDevice(bridge, 'device-retained')
    await a.client.publishAsync('registration/request', JSON.stringify({ requestId: 'retained' }), {
      qos: 1,
      retain: true,
    })
    expect(await a.nextReply()).toMatchObject({ status: 'issued', requestId: 'retained' })
    await a.end()
    // a fresh subscriber gets no retained reply either
    const again = await connectDevice(bridge, 'device-retained')
    await again.send({ requestId: 'fresh' })
    expect(await again.nextReply()).toMatchObject({ requestId: 'fresh' })
    expect(again.replies).toHaveLength(1)
    await again.end()
  })
})

describe("zero of B's messages reach A", () => {
  it('A subscribed to everything it may, B registers, A only ever sees its own replies', async () => {
    // identities of their own: both register here for the first time (the default policy refuses a second)
    await bridge.pki.makeDevice('iso-a')
    await bridge.pki.makeDevice('iso-b')
    const a = await connectDevice(bridge, 'iso-a')
    for (const topic of ['#', 'registration/+/reply', 'registration/iso-b/reply', '$SYS/#']) {
      expect(await grantedQos(a.client, topic, 1)).toBe(128)
    }
    const b = await connectDevice(bridge, 'iso-b')
    await b.send({ requestId: 'b-1' })
    expect(await b.nextReply()).toMatchObject({ status: 'issued', requestId: 'b-1' })
    await a.send({ requestId: 'a-1' })
    expect(await a.nextReply()).toMatchObject({ status: 'issued', requestId: 'a-1' })
    expect(a.replies.map((r: Reply) => r.requestId)).toEqual(['a-1'])
    await a.end()
    await b.end()
  })
})

describe('client ids and sessions', () => {
  it("A connecting with B's client id does not disconnect B", async () => {
    const b = await rawConnect('device-002', { clientId: 'shared-id' })
    expect(b.connack?.returnCode).toBe(0)
    let bClosed = false
    b.client.once('close', () => {
      bClosed = true
    })
    const a = await rawConnect('device-001', { clientId: 'shared-id' })
    expect(a.connack?.returnCode).toBe(0)
    // B still works: a full registration round trip on B's connection
    await b.client.subscribeAsync('registration/device-002/reply', { qos: 1 })
    const answered = new Promise((resolve) => b.client.once('message', resolve))
    await b.client.publishAsync('registration/request', '{}', { qos: 1 })
    await answered
    expect(bClosed).toBe(false)
    a.client.end(true)
    b.client.end(true)
  })

  it("A cannot resume B's stored session", async () => {
    const b = await rawConnect('device-002', { clientId: 'persistent', clean: false })
    await b.client.subscribeAsync('registration/device-002/reply', { qos: 1 })
    await b.client.endAsync()
    const a = await rawConnect('device-001', { clientId: 'persistent', clean: false })
    expect(a.connack?.sessionPresent).toBe(false)
    await a.client.endAsync()
    const bAgain = await rawConnect('device-002', { clientId: 'persistent', clean: false })
    expect(bAgain.connack?.sessionPresent).toBe(true)
    await bAgain.client.endAsync()
  })

  it('the same identity may take over its own client id (normal MQTT)', async () => {
    const first = await rawConnect('device-003', { clientId: 'mine' })
    const closed = new Promise<void>((resolve) => first.client.once('close', () => resolve()))
    const second = await rawConnect('device-003', { clientId: 'mine' })
    expect(second.connack?.returnCode).toBe(0)
    await closed
    second.client.end(true)
    first.client.end(true)
  })

  it('refuses an empty client id with cleanSession=0 (identifier rejected) [MQTT-3.1.3-8]', async () => {
    const raw = await rawTls(bridge, 'device-001')
    // written by hand: MQTT.js and mqtt-packet both refuse to send this CONNECT
    // fixed header, "MQTT", level 4, flags 0 (cleanSession=0), keepalive 30, client id of length 0
    raw.sendBytes(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 30, 0, 0]))
    expect(await raw.nextPacket()).toMatchObject({ cmd: 'connack', returnCode: 2 })
    expect(await raw.nextPacket()).toBeNull() // and the connection is closed
  })

  it('accepts an empty client id with cleanSession=1', async () => {
    const raw = await rawTls(bridge, 'device-001')
    expect(await raw.connect('')).toMatchObject({ cmd: 'connack', returnCode: 0 })
    raw.close()
  })

  it('refuses a will message (not authorized)', async () => {
    const { error, client } = await rawConnect('device-001', {
      will: { topic: 'registration/device-002/reply', payload: Buffer.from('x'), qos: 1, retain: true },
    })
    expect(error?.code).toBe(5)
    client.end(true)
  })

  it('refuses an overlong client id', async () => {
    const { error, client } = await rawConnect('device-001', { clientId: 'x'.repeat(200) })
    expect(error?.code).toBe(2)
    client.end(true)
  })
})

describe('identities', () => {
  it.each([
    ['slash', 'bad/device'],
    ['plus', 'bad+device'],
    ['hash', 'bad#'],
    ['space', 'bad device'],
    ['empty', ''],
  ])('refuses a certificate whose CN has a %s at CONNECT', async (name, commonName) => {
    const files = await bridge.pki.makeDevice(`unsafe-${name}`, { commonName })
    const tls = tlsFor(bridge, files)
    const client = mqtt.connect(bridge.url, {
      reconnectPeriod: 0,
      key: tls.keyPem,
      cert: tls.certPem,
      ca: tls.caPem,
    })
    const error = await new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve))
    expect(error.code).toBe(5)
    client.end(true)
  })
})

describe('identity from a SAN', () => {
  it('identity.source=san-dns takes the one DNS SAN as the identity', async () => {
    const sanBridge = await startTestBridge(['identity.source=san-dns'], bridge.pki)
    const files = await bridge.pki.makeDevice('san-device', {
      commonName: 'Factory Unit 7',
      dnsNames: ['unit-7'],
    })
    const tls = tlsFor(sanBridge, files)
    const { register } = await import('../../src/client/index.js')
    const issued = await register({ url: sanBridge.url, identity: 'unit-7', ...tls })
    expect(issued.certificatePem).toContain('BEGIN CERTIFICATE')
    const { X509Certificate } = await import('node:crypto')
    expect(new X509Certificate(issued.certificatePem).subject).toBe('CN=unit-7')
    await sanBridge.stop()
  })
})
