import { connect, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { rawConnect } from '../support/raw-mqtt.js'

/** The first bytes of a TLS ClientHello record header: a handshake that starts and never finishes. */
const PARTIAL_HANDSHAKE = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])

interface Held {
  readonly socket: Socket
  readonly closed: Promise<void>
}

/** hold opens a TCP socket that is idle, or starts a TLS handshake it never finishes. */
function hold(port: number, kind: 'idle' | 'slow-handshake'): Held {
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  if (kind === 'slow-handshake') socket.once('connect', () => socket.write(PARTIAL_HANDSHAKE))
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) }
}

function holdMany(port: number, count: number): Held[] {
  return Array.from({ length: count }, (_, i) => hold(port, i % 2 === 0 ? 'idle' : 'slow-handshake'))
}

let pki: TestPki
let held: Held[] = []
beforeAll(async () => {
  pki = await createTestPki()
})
afterEach(async () => {
  for (const h of held) h.socket.destroy()
  await Promise.all(held.map((h) => h.closed))
  held = []
})

describe('at limits.maxConnections', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    // a handshake timeout far longer than the test: every socket closed here was refused at once
    bridge = await startTestBridge(['limits.maxConnections=100', 'limits.connectTimeoutMs=60000'], pki)
  })
  afterAll(() => bridge?.stop())

  it('new sockets are refused at once while a connected device keeps registering', async () => {
    const device = await connectDevice(bridge, 'device-001')
    held = holdMany(bridge.port, 300)
    // the device holds one of the 100 places; of 300 sockets, 99 are held and 201 closed by the bridge
    let closed = 0
    await new Promise<void>((resolve) => {
      for (const h of held)
        h.closed.then(() => {
          if (++closed === 201) resolve()
        })
    })
    await device.send({ requestId: 'while-flooded' })
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'while-flooded' })
    expect(closed).toBe(201)
    await device.end()
  })
})

describe('sockets that never finish connecting', () => {
  let bridge: TestBridge
  beforeAll(async () => {
    bridge = await startTestBridge(['limits.maxConnections=100', 'limits.connectTimeoutMs=500'], pki)
  })
  afterAll(() => bridge?.stop())

  it('hundreds of idle and slow-handshake sockets are destroyed after the handshake timeout; a device then registers', async () => {
    held = holdMany(bridge.port, 300)
    // without the timeout destroying them, 100 of these would hold every place forever and this never resolves
    await Promise.all(held.map((h) => h.closed))
    const device = await connectDevice(bridge, 'device-002')
    await device.send({ requestId: 'after-flood' })
    expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'after-flood' })
    await device.end()
  })

  it('a verified TLS connection that never sends CONNECT is closed', async () => {
    const raw = await rawConnect(bridge, 'device-003')
    expect(await raw.nextPacket()).toBeNull()
  })

  it('a CONNECT sent byte by byte is cut off after limits.connectTimeoutMs', async () => {
    const raw = await rawConnect(bridge, 'device-003')
    // a CONNECT of MQTT 3.1.1 with a long client id, dribbled out one byte at a time
    const connectPacket = Buffer.concat([
      Buffer.from([0x10, 0x7f, 0x00, 0x04]),
      Buffer.from('MQTT'),
      Buffer.from([0x04, 0x02, 0x00, 0x3c, 0x00, 0x73]),
      Buffer.alloc(0x73, 0x61),
    ])
    let sent = 0
    const drip = setInterval(() => {
      if (sent < connectPacket.length) raw.sendBytes(connectPacket.subarray(sent, ++sent))
    }, 20)
    try {
      expect(await raw.nextPacket()).toBeNull()
      expect(sent).toBeLessThan(connectPacket.length) // cut off before it could finish
    } finally {
      clearInterval(drip)
    }
  })
})
