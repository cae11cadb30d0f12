import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectTls } from '../../src/client/register.js'

/**
 * The responder beside mosquitto: an MQTT client that answers each request with the same fixed reply as the
 * Aedes baseline, on the topic the request names. Usage: node mqtt-responder.js <pki dir> <url>
 */
const [pki = '', url = ''] = process.argv.slice(2)
const reply = Buffer.from(JSON.stringify({ version: 1, status: 'issued', certificate: 'x'.repeat(1400) }))
const client = await connectTls(url, {
  certPem: readFileSync(join(pki, 'devices', 'gateway-001.crt'), 'utf8'),
  keyPem: readFileSync(join(pki, 'devices', 'gateway-001.key'), 'utf8'),
  caPem: readFileSync(join(pki, 'issuing-ca.crt'), 'utf8'),
})
client.on('message', (_topic, payload) => {
  const { replyTo } = JSON.parse(String(payload)) as { replyTo: string }
  client.publish(replyTo, reply, { qos: 1 })
})
await client.subscribeAsync('registration/request', { qos: 1 })
process.stdout.write('responding\n')
