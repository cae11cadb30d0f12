import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, mosquittoArgs, tlsFor } from '../support/device.js'
import { start } from '../support/process.js'
import { startRedis, type TestRedis } from '../support/redis.js'
import { run } from '../support/tools.js'

// A persistent session (cleanSession=0) whose one SUBSCRIBE names several filters, with the sessions in Redis.
// Aedes stores a SUBSCRIBE's filters once per filter it grants, all at once, and aedes-persistence-redis waited for
// each store under one key (the client and the packet's first filter): only one of them ever finished, and the
// SUBACK never came (src/broker/subscription-store.ts).

let redis: TestRedis
let bridge: TestBridge
let admin: Redis

beforeAll(async () => {
  redis = await startRedis()
  bridge = await startTestBridge([`state.redis.url=${redis.url}`])
  admin = new Redis(redis.url)
})

afterAll(async () => {
  admin?.disconnect()
  await bridge?.stop()
  await redis?.stop()
})

async function persistent(id: string, clientId: string, on = bridge): Promise<MqttClient> {
  const tls = tlsFor(on, on.pki.device(id))
  return mqtt.connectAsync(on.url, {
    ...{ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0, protocolVersion: 4 },
    clientId,
    clean: false,
  })
}

/** answer sends a request on the JSON request topic and resolves with its final reply on the JSON reply topic. */
async function answer(client: MqttClient, id: string, requestId: string): Promise<Reply> {
  const replied = new Promise<Reply>((resolve) => {
    client.on('message', (topic, payload) => {
      if (topic !== `registration/${id}/reply`) return
      const reply = JSON.parse(payload.toString('utf8')) as Reply
      if (reply.requestId === requestId && reply.status !== 'pending') resolve(reply)
    })
  })
  await client.publishAsync('registration/request', JSON.stringify({ requestId }), { qos: 1 })
  return replied
}

/** storedFilters are the filters aedes-persistence-redis keeps for a session (`client:<identity>:<client id>`). */
async function storedFilters(id: string, clientId: string): Promise<string[]> {
  return (await admin.hkeys(`client:${encodeURIComponent(`${id}:${clientId}`)}`)).sort()
}

describe('one SUBSCRIBE of several filters, persistent session, Redis', () => {
  it('both reply topics in one packet: SUBACK grants both, and a reply arrives', async () => {
    const client = await persistent('device-001', 'both-topics')
    try {
      const granted = await client.subscribeAsync({
        'registration/device-001/reply': { qos: 1 },
        'registration/device-001/reply/cbor': { qos: 1 },
      })
      expect(granted.map((g) => g.qos)).toEqual([1, 1])
      expect(await storedFilters('device-001', 'both-topics')).toEqual([
        'registration/device-001/reply',
        'registration/device-001/reply/cbor',
      ])
      expect(await answer(client, 'device-001', 'both-one-packet')).toMatchObject({ status: 'issued' })
    } finally {
      await client.endAsync()
    }
  })

  it('allowed and refused filters in one packet: the refused ones get 0x80 and are not kept in the session', async () => {
    const client = await persistent('device-002', 'mixed-topics')
    try {
      const filters = [
        'registration/device-002/reply',
        'registration/device-003/reply',
        'registration/device-002/reply/cbor',
        'registration/request',
      ]
      // MQTT.js reports a SUBACK that refuses a filter as an error carrying the packet
      const granted = await new Promise<number[] | undefined>((resolve) =>
        client.subscribe(filters, { qos: 1 }, (err) =>
          resolve((err as { packet?: { granted?: number[] } } | null)?.packet?.granted),
        ),
      )
      expect(granted).toEqual([1, 128, 1, 128])
      expect(await storedFilters('device-002', 'mixed-topics')).toEqual([
        'registration/device-002/reply',
        'registration/device-002/reply/cbor',
      ])
      expect(await answer(client, 'device-002', 'mixed-one-packet')).toMatchObject({ status: 'issued' })
    } finally {
      await client.endAsync()
    }
  })

  it('the same SUBSCRIBE sent twice at once: both SUBACKs come', async () => {
    const client = await persistent('device-003', 'twice')
    try {
      const filters = { 'registration/device-003/reply': { qos: 1 as const } }
      const granted = await Promise.all([client.subscribeAsync(filters), client.subscribeAsync(filters)])
      expect(granted.map((g) => g.map((s) => s.qos))).toEqual([[1], [1]])
    } finally {
      await client.endAsync()
    }
  })

  it('mosquitto_sub -c with both reply topics gets its SUBACK and the reply', async () => {
    const tls = mosquittoArgs(bridge, 'device-004')
    const subscribed = bridge.waitForLog('subscribed')
    const sub = start('mosquitto_sub', [
      ...tls,
      ...['-c', '-i', 'mosquitto-both', '-q', '1', '-d', '-C', '1', '-W', '20'],
      ...['-t', 'registration/device-004/reply', '-t', 'registration/device-004/reply/cbor'],
    ])
    await subscribed // Aedes announces a subscription once its SUBACK is written
    const pub = await run('mosquitto_pub', [
      ...tls,
      ...['-i', 'mosquitto-asker', '-q', '1', '-t', 'registration/request'],
      ...['-m', JSON.stringify({ requestId: 'mosquitto-both' })],
    ])
    expect(pub.code).toBe(0)
    expect(await sub.exited).toBe(0)
    // mosquitto_sub -d writes through a pipe, buffered: what it printed is read once it has exited
    expect(sub.output()).toContain('Subscribed (mid: 1): 1, 1')
    expect(sub.output()).toContain('"requestId":"mosquitto-both"')
  })
})

describe('a refused filter of a persistent session, in memory', () => {
  it("is not kept: another identity's replies never take the session's quota of queued replies", async () => {
    const memory = await startTestBridge(['limits.maxQueuedRepliesPerIdentity=1'])
    const csr = async (id: string) => ({ requestId: `csr-${id}`, csr: (await opensslCsr(`/CN=${id}`)).csr })
    try {
      // device-002 parks a session with its reply topic and device-003's (refused) in one SUBSCRIBE
      const parked = await persistent('device-002', 'quota', memory)
      await new Promise((resolve) =>
        parked.subscribe(
          ['registration/device-002/reply', 'registration/device-003/reply'],
          { qos: 1 },
          resolve,
        ),
      )
      await parked.endAsync()
      // device-003's answer (CSR mode: QoS 1) would be queued for that session had it kept the refused filter
      const other = await connectDevice(memory, 'device-003')
      await other.send(await csr('device-003'))
      expect(await other.nextReply()).toMatchObject({ status: 'issued' })
      await other.end()
      // device-002's own answer, asked from another connection, is kept for the session: its one queued reply
      const asker = await connectDevice(memory, 'device-002')
      await asker.send(await csr('device-002'))
      expect(await asker.nextReply()).toMatchObject({ status: 'issued' })
      await asker.end()
      const back = await persistent('device-002', 'quota', memory)
      const kept = await new Promise<Reply>((resolve) =>
        back.on('message', (_t, payload) => resolve(JSON.parse(payload.toString('utf8')) as Reply)),
      )
      expect(kept).toMatchObject({ status: 'issued', requestId: 'csr-device-002' })
      await back.endAsync()
    } finally {
      await memory.stop()
    }
  })
})
