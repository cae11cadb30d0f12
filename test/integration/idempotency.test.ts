import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { rawConnect } from '../support/raw-mqtt.js'

let bridge: TestBridge

beforeAll(async () => {
  bridge = await startTestBridge(['registration.rateLimit.burst=100'])
})

afterAll(async () => {
  await bridge?.stop()
})

describe('a repeated request gets the same answer and never a second issuance', () => {
  it('a retry with the same requestId, on a new connection', async () => {
    const before = (await bridge.auditLines()).length
    const first = await connectDevice(bridge, 'device-001')
    await first.send({ requestId: 'same-1' })
    const a = (await first.nextReply()) as IssuedReply
    await first.end()
    const second = await connectDevice(bridge, 'device-001')
    await second.send({ requestId: 'same-1' })
    const b = (await second.nextReply()) as IssuedReply
    await second.end()
    expect(a.status).toBe('issued')
    expect(b).toEqual(a)
    expect((await bridge.auditLines()).length).toBe(before + 1)
  })

  it('a QoS 1 redelivery (DUP, same packet id) of a request without requestId', async () => {
    const before = (await bridge.auditLines()).length
    const raw = await rawConnect(bridge, 'device-002')
    expect(await raw.connect('redeliver')).toMatchObject({ cmd: 'connack', returnCode: 0 })
    raw.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'registration/device-002/reply', qos: 1 }],
    })
    expect(await raw.nextPacket()).toMatchObject({ cmd: 'suback', granted: [1] })
    const request = {
      cmd: 'publish',
      topic: 'registration/request',
      payload: Buffer.from('{}'),
      qos: 1,
      messageId: 7,
    } as const
    raw.send({ ...request, dup: false, retain: false })
    const replies: IssuedReply[] = []
    while (replies.length < 2) {
      const packet = await raw.nextPacket()
      if (packet?.cmd !== 'publish') continue
      raw.send({ cmd: 'puback', messageId: packet.messageId ?? 0 })
      replies.push(JSON.parse(String(packet.payload)) as IssuedReply)
      if (replies.length === 1) raw.send({ ...request, dup: true, retain: false })
    }
    raw.close()
    expect(replies[0]?.status).toBe('issued')
    expect(replies[1]).toEqual(replies[0])
    expect((await bridge.auditLines()).length).toBe(before + 1)
  })

  it('a different request is a new registration', async () => {
    const device = await connectDevice(bridge, 'device-003')
    await device.send({ requestId: 'one' })
    const a = (await device.nextReply()) as IssuedReply
    await device.send({ requestId: 'two' })
    const b = (await device.nextReply()) as IssuedReply
    await device.end()
    expect(b.serialNumber).not.toBe(a.serialNumber)
  })
})

describe('at most one registration in flight per identity', () => {
  it('a second, different request while one is in flight is refused as retryable', async () => {
    const device = await connectDevice(bridge, 'device-004')
    // both written back to back, before any PUBACK: the second arrives while the first is in flight
    await Promise.all([
      device.send({ requestId: 'slow', keyAlgorithm: 'RSA-4096' }),
      device.send({ requestId: 'meanwhile' }),
    ])
    const replies = [await device.nextReply(), await device.nextReply()]
    await device.end()
    expect(replies).toContainEqual(
      expect.objectContaining({
        status: 'rejected',
        requestId: 'meanwhile',
        error: expect.objectContaining({ code: 'REGISTRATION_IN_PROGRESS', retryable: true }),
      }),
    )
    expect(replies).toContainEqual(expect.objectContaining({ status: 'issued', requestId: 'slow' }))
  })

  it('the same request sent again while in flight is answered once', async () => {
    const device = await connectDevice(bridge, 'device-005')
    const twice = { requestId: 'twice', keyAlgorithm: 'RSA-4096' }
    await Promise.all([device.send(twice), device.send(twice)])
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'twice' })
    // a later, different request is answered next: no second answer to 'twice' came in between
    await device.send({ requestId: 'after' })
    expect(await device.nextReply()).toMatchObject({ requestId: 'after' })
    // (a slow RSA-4096 key may also earn a pending notice, which is not an answer)
    const answers = device.replies.filter((r) => r.status !== 'pending')
    expect(answers.map((r) => r.requestId)).toEqual(['twice', 'after'])
    await device.end()
  })
})

describe('pending notices and timeouts', () => {
  it('sends pending when issuance takes longer than the threshold, then the answer', async () => {
    const slow = await startTestBridge(['registration.pendingAfterMs=1'], bridge.pki)
    // shares the registry with the first bridge, where device-001 already registered
    await slow.pki.makeDevice('device-pending')
    const device = await connectDevice(slow, 'device-pending')
    await device.send({ requestId: 'p', keyAlgorithm: 'RSA-4096' })
    expect(await device.nextReply({ includePending: true })).toEqual({
      version: 1,
      status: 'pending',
      requestId: 'p',
    })
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'p' })
    await device.end()
    await slow.stop()
  })

  it('answers ISSUANCE_TIMEOUT (retryable) when issuance exceeds the timeout, and issues nothing', async () => {
    const slow = await startTestBridge(['registration.timeoutMs=1', 'registration.pendingAfterMs=60000'])
    const device = await connectDevice(slow, 'device-001')
    await device.send({ requestId: 't', keyAlgorithm: 'RSA-4096' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      requestId: 't',
      error: { code: 'ISSUANCE_TIMEOUT', retryable: true },
    })
    expect(await slow.auditLines()).toEqual([])
    await device.end()
    await slow.stop()
  })
})
