import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/** A device that keeps a persistent session (cleanSession=0) and collects every reply it receives. */
interface Session {
  readonly client: MqttClient
  readonly replies: Reply[]
  next(): Promise<Reply>
}

async function session(bridge: TestBridge, id: string, clientId: string, clean = false): Promise<Session> {
  const tls = tlsFor(bridge, bridge.pki.device(id))
  const client = await mqtt.connectAsync(bridge.url, {
    ...{ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0, protocolVersion: 4 },
    clientId,
    clean,
  })
  const replies: Reply[] = []
  const waiters: ((r: Reply) => void)[] = []
  let read = 0
  const pump = (): void => {
    while (waiters.length > 0 && read < replies.length) waiters.shift()?.(replies[read++] as Reply)
  }
  client.on('message', (_t, payload) => {
    replies.push(JSON.parse(payload.toString('utf8')) as Reply)
    pump()
  })
  return {
    client,
    replies,
    next: () =>
      new Promise((resolve) => {
        waiters.push(resolve)
        pump()
      }),
  }
}

/** final waits for the next reply that is not a pending notice. */
async function final(s: Session): Promise<Reply> {
  for (;;) {
    const r = await s.next()
    if (r.status !== 'pending') return r
  }
}

const request = (s: Session, body: object | string): Promise<unknown> =>
  s.client.publishAsync('registration/request', typeof body === 'string' ? body : JSON.stringify(body), {
    qos: 1,
  })

let pki: TestPki
beforeAll(async () => {
  pki = await createTestPki()
})

describe('offline delivery for persistent sessions', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    bridge = await startTestBridge(
      [
        'registration.pendingAfterMs=1',
        'registration.rateLimit.burst=50',
        'limits.maxQueuedRepliesPerIdentity=2',
        // the queue bound is about several issued answers for one identity, which only `allow` gives
        'lifecycle.reRegistration=allow',
      ],
      pki,
    )
  })
  afterAll(() => bridge?.stop())

  it('a device that loses its link mid-registration gets its answer on reconnect', async () => {
    const first = await session(bridge, 'device-001', 'keeper')
    await first.client.subscribeAsync('registration/device-001/reply', { qos: 1 })
    const issued = bridge.waitForLog('certificate issued')
    await request(first, { requestId: 'slow', keyAlgorithm: 'RSA-4096' })
    expect(await first.next()).toMatchObject({ status: 'pending' })
    await first.client.endAsync(true) // the link drops while the key is being made
    await issued
    const again = await session(bridge, 'device-001', 'keeper')
    expect(await again.next()).toMatchObject({ status: 'issued', requestId: 'slow' })
    await again.client.endAsync()
  })

  it('keeps at most limits.maxQueuedRepliesPerIdentity replies, and no rejection of a request that can never succeed', async () => {
    const keeper = await session(bridge, 'device-002', 'keeper')
    await keeper.client.subscribeAsync('registration/device-002/reply', { qos: 1 })
    await keeper.client.endAsync()
    // another connection of the same identity answers itself; each reply is also due to the offline session
    const other = await session(bridge, 'device-002', 'other', true)
    await other.client.subscribeAsync('registration/device-002/reply', { qos: 1 })
    await request(other, 'not json')
    expect(await final(other)).toMatchObject({ status: 'rejected', error: { code: 'MALFORMED_REQUEST' } })
    for (const id of ['a', 'b', 'c', 'd']) {
      await request(other, { requestId: id })
      expect(await final(other)).toMatchObject({ status: 'issued', requestId: id })
    }
    await other.client.endAsync()
    // with the identity's queue full, a connected persistent session still gets its answer (just not kept)
    const online = await session(bridge, 'device-002', 'online')
    await online.client.subscribeAsync('registration/device-002/reply', { qos: 1 })
    await request(online, { requestId: 'while-full' })
    expect(await final(online)).toMatchObject({ status: 'issued', requestId: 'while-full' })
    expect(online.client.connected).toBe(true)
    await online.client.endAsync()
    const back = await session(bridge, 'device-002', 'keeper')
    await request(back, { requestId: 'marker' })
    const received: Reply[] = []
    for (let r = await back.next(); r.requestId !== 'marker'; r = await back.next()) received.push(r)
    // progress notices are never kept either: only the first two answers waited
    expect(received.map((r) => `${r.status}:${r.requestId}`)).toEqual(['issued:a', 'issued:b'])
    await back.client.endAsync()
  })
})

describe('queued replies expire', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    bridge = await startTestBridge(['registration.replyCacheSeconds=1'], pki)
  })
  afterAll(() => bridge?.stop())

  it('a reply waits for its session no longer than registration.replyCacheSeconds', async () => {
    const keeper = await session(bridge, 'device-003', 'keeper')
    await keeper.client.subscribeAsync('registration/device-003/reply', { qos: 1 })
    await keeper.client.endAsync()
    const other = await session(bridge, 'device-003', 'other', true)
    await other.client.subscribeAsync('registration/device-003/reply', { qos: 1 })
    await request(other, { requestId: 'expires' })
    expect(await other.next()).toMatchObject({ status: 'issued' })
    await other.client.endAsync()
    await bridge.waitForLog('queued replies expired')
    const back = await session(bridge, 'device-003', 'keeper')
    await request(back, { requestId: 'marker' })
    expect(await back.next()).toMatchObject({ requestId: 'marker' })
    await back.client.endAsync()
  })
})

describe('stored sessions are bounded per identity and expire', () => {
  /** park stores a persistent session (a QoS 1 subscription) and leaves; resumes tells whether it is still there. */
  async function park(bridge: TestBridge, clientId: string): Promise<void> {
    const s = await session(bridge, 'device-004', clientId)
    await s.client.subscribeAsync('registration/device-004/reply', { qos: 1 })
    await s.client.endAsync()
  }
  async function resumes(bridge: TestBridge, clientId: string): Promise<boolean> {
    const tls = tlsFor(bridge, bridge.pki.device('device-004'))
    const client = mqtt.connect(bridge.url, {
      ...{ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0, protocolVersion: 4 },
      clientId,
      clean: false,
    })
    const present = await new Promise<boolean>((resolve, reject) => {
      client.once('connect', (connack) => resolve(connack.sessionPresent))
      client.once('error', reject)
    })
    await client.endAsync()
    return present
  }

  it('keeps at most limits.maxSessionsPerIdentity; the least recently used is dropped', async () => {
    const bridge = await startTestBridge(['limits.maxSessionsPerIdentity=2'], pki)
    try {
      const dropped = bridge.waitForLog('stored session dropped: the identity has too many')
      for (const id of ['one', 'two', 'three']) await park(bridge, id)
      await dropped
      expect(await resumes(bridge, 'three')).toBe(true)
      expect(await resumes(bridge, 'one')).toBe(false)
    } finally {
      await bridge.stop()
    }
  })

  it('drops a session disconnected for limits.sessionExpirySeconds', async () => {
    const bridge = await startTestBridge(['limits.sessionExpirySeconds=1'], pki)
    try {
      const expired = bridge.waitForLog('stored session expired')
      await park(bridge, 'idle')
      await expired
      expect(await resumes(bridge, 'idle')).toBe(false)
    } finally {
      await bridge.stop()
    }
  })
})
