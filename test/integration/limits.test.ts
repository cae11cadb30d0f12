import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { rawConnect } from '../support/raw-mqtt.js'

describe('rate limit', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    bridge = await startTestBridge(['registration.rateLimit.burst=2', 'registration.rateLimit.perMinute=1'])
  })
  afterAll(() => bridge?.stop())

  it('refuses past the burst with RATE_LIMITED and a retry delay; other identities are unaffected', async () => {
    const device = await connectDevice(bridge, 'device-001')
    await device.send({ requestId: 'r1' })
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'r1' })
    // a second registration is refused by the default re-registration policy, and spends a token all the same
    await device.send({ requestId: 'r2' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      requestId: 'r2',
      error: { code: 'NOT_AUTHORIZED' },
    })
    await device.send({ requestId: 'r3' })
    expect(await device.nextReply()).toMatchObject({
      status: 'rejected',
      error: { code: 'RATE_LIMITED', retryable: true, retryAfterSeconds: 60 },
    })
    // a repeat of an answered request is served from memory, not counted
    await device.send({ requestId: 'r1' })
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'r1' })
    const other = await connectDevice(bridge, 'device-002')
    await other.send({})
    expect(await other.nextReply()).toMatchObject({ status: 'issued' })
    await other.end()
    await device.end()
  })
})

describe('connection limits', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    bridge = await startTestBridge(['limits.maxPacketBytes=2048', 'limits.maxConnections=3'])
  })
  afterAll(() => bridge?.stop())

  it('closes a connection that sends a packet over the size limit, before reading it', async () => {
    const raw = await rawConnect(bridge, 'device-001')
    expect(await raw.connect('big')).toMatchObject({ cmd: 'connack', returnCode: 0 })
    // announce 1 MiB, send only the header: the bridge must not wait for (or buffer) the rest
    raw.sendBytes(Buffer.from([0x30, 0x80, 0x80, 0x40]))
    expect(await raw.nextPacket()).toBeNull()
    // and it keeps serving others
    const device = await connectDevice(bridge, 'device-002')
    await device.send({})
    expect(await device.nextReply()).toMatchObject({ status: 'issued' })
    await device.end()
  })

  it('accepts no more than maxConnections at once', async () => {
    const open = await Promise.all(
      [1, 2, 3].map(() => connectDevice(bridge, 'device-003', { subscribe: false })),
    )
    const tls = tlsFor(bridge, bridge.pki.device('device-004'))
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({
        host: 'localhost',
        port: bridge.port,
        key: tls.keyPem,
        cert: tls.certPem,
        ca: tls.caPem,
      })
      socket.once('secureConnect', () => {
        socket.destroy()
        resolve(false)
      })
      socket.once('error', () => resolve(true))
      socket.once('close', () => resolve(true))
    })
    expect(refused).toBe(true)
    await Promise.all(open.map((d) => d.end()))
  })

  it('closes a TLS connection that never sends CONNECT (connect timeout)', async () => {
    const quick = await startTestBridge(['limits.connectTimeoutMs=200'], bridge.pki)
    const raw = await rawConnect(quick, 'device-001')
    expect(await raw.nextPacket()).toBeNull()
    await quick.stop()
  })
})
