import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import { createTlsListener } from '../../src/broker/tls-listener.js'

/**
 * The baseline: plain Aedes behind the same mutual-TLS listener, no hooks, and a trivial responder that
 * echoes a fixed reply (the size of an issued reply) to the topic the request names. No bridge logic.
 * Usage: node aedes-echo.js <pki dir>
 */
const pki = process.argv[2] ?? ''
const reply = Buffer.from(JSON.stringify({ version: 1, status: 'issued', certificate: 'x'.repeat(1400) }))
const aedes = await Aedes.createBroker({})
aedes.on('publish', (packet, client) => {
  if (!client || packet.topic !== 'registration/request') return
  const { replyTo } = JSON.parse(String(packet.payload)) as { replyTo: string }
  aedes.publish(
    { cmd: 'publish', topic: replyTo, payload: reply, qos: 1, retain: false, dup: false },
    () => {},
  )
})
const server = createTlsListener(
  {
    certPem: readFileSync(join(pki, 'server.crt'), 'utf8'),
    keyPem: readFileSync(join(pki, 'server.key'), 'utf8'),
    clientCaPem: readFileSync(join(pki, 'factory-ca.crt'), 'utf8'),
    maxConnections: 100_000,
    handshakeTimeoutMs: 30_000,
    maxIdleMs: 300_000,
  },
  (socket) => aedes.handle(socket),
)
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number }
  process.stdout.write(`listening ${address.port}\n`)
})
