import { connect, type TLSSocket } from 'node:tls'
import mqttPacket from 'mqtt-packet'
import type { TestBridge } from './bridge.js'
import { tlsFor } from './device.js'

/** RawConnection is a TLS socket speaking hand-made MQTT packets, for what MQTT.js refuses to send. */
export interface RawConnection {
  readonly socket: TLSSocket
  send(packet: mqttPacket.Packet): void
  /** connect sends an MQTT 3.1.1 CONNECT (cleanSession=1, keepalive 30 s) and resolves with the answer. */
  connect(clientId: string): Promise<mqttPacket.Packet | null>
  sendBytes(bytes: Buffer): void
  /** nextPacket resolves with the next packet from the broker, or null when the connection closes. */
  nextPacket(): Promise<mqttPacket.Packet | null>
  close(): void
}

/** rawConnect opens a TLS connection with a device's factory certificate, before any MQTT. */
export async function rawConnect(bridge: TestBridge, id: string): Promise<RawConnection> {
  const tls = tlsFor(bridge, bridge.pki.device(id))
  const socket = connect({
    host: 'localhost',
    port: bridge.port,
    key: tls.keyPem,
    cert: tls.certPem,
    ca: tls.caPem,
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const packets: (mqttPacket.Packet | null)[] = []
  const waiters: ((p: mqttPacket.Packet | null) => void)[] = []
  const deliver = (p: mqttPacket.Packet | null): void => {
    const waiter = waiters.shift()
    if (waiter) waiter(p)
    else packets.push(p)
  }
  parser.on('packet', deliver)
  socket.on('data', (chunk) => parser.parse(chunk))
  socket.on('error', () => {})
  socket.once('close', () => deliver(null))
  const send = (packet: mqttPacket.Packet): boolean => socket.write(mqttPacket.generate(packet))
  const nextPacket = (): Promise<mqttPacket.Packet | null> =>
    new Promise((resolve) => {
      if (packets.length > 0) resolve(packets.shift() ?? null)
      else waiters.push(resolve)
    })
  return {
    socket,
    send,
    connect(clientId) {
      send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30 })
      return nextPacket()
    },
    sendBytes: (bytes) => socket.write(bytes),
    nextPacket,
    close: () => socket.destroy(),
  }
}
