import type { MqttClient } from 'mqtt'
import { connectTls } from '../../src/client/register.js'
import type { Device, Outcome } from './load.js'
import type { Target } from './servers.js'

/** AWS_TEMPLATES is the provisioning templates file the bench's bridge runs with: any device, no parameter. */
export const AWS_TEMPLATES = "templates:\n  - name: BenchTemplate\n    identities: ['*']\n"

const CSR_TOPIC = '$aws/certificates/create-from-csr/json'
const PROVISION_TOPIC = '$aws/provisioning-templates/BenchTemplate/provision/json'

/** call subscribes to a request topic's answers (as the AWS SDK does), publishes, and resolves with the answer. */
async function call(
  client: MqttClient,
  topic: string,
  body: object,
): Promise<{ ok: boolean; body: Record<string, string> }> {
  const accepted = `${topic}/accepted`
  const answer = new Promise<{ ok: boolean; body: Record<string, string> }>((resolve, reject) => {
    client.on('message', (t, payload) => {
      if (t === accepted || t === `${topic}/rejected`)
        resolve({ ok: t === accepted, body: JSON.parse(String(payload)) })
    })
    client.once('close', () => reject(new Error('closed before the answer')))
  })
  await client.subscribeAsync([accepted, `${topic}/rejected`], { qos: 1 })
  await client.publishAsync(topic, JSON.stringify(body), { qos: 1 })
  const result = await answer
  client.removeAllListeners('message')
  return result
}

/**
 * provisionOnce is one device's AWS fleet-provisioning flow as the SDK's CSR sample does it, on a fresh mutual-TLS
 * connection: CreateCertificateFromCsr, then RegisterThing with its ownership token. `status` is `issued` once
 * RegisterThing is accepted, else the errorCode.
 */
export async function provisionOnce(target: Target, device: Device): Promise<Outcome> {
  const started = performance.now()
  const client = await connectTls(target.url, device.tls)
  try {
    const published = performance.now()
    const created = await call(client, CSR_TOPIC, { certificateSigningRequest: device.csr })
    if (!created.ok) return outcome(started, published, created.body.errorCode ?? 'rejected')
    const token = created.body.certificateOwnershipToken
    const registered = await call(client, PROVISION_TOPIC, {
      certificateOwnershipToken: token,
      parameters: {},
    })
    return outcome(started, published, registered.ok ? 'issued' : (registered.body.errorCode ?? 'rejected'))
  } finally {
    client.end(true)
  }
}

function outcome(started: number, published: number, status: string): Outcome {
  const now = performance.now()
  return { ms: now - started, replyMs: now - published, status }
}
