import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encode } from 'cborg'
import type { MqttClient } from 'mqtt'
import { connectTls } from '../../src/client/register.js'
import type { WireFormat } from '../../src/protocol/codec/codecs.js'
import type { TestBridge } from './bridge.js'
import { decodeReply, formatSuffix, tlsFor } from './device.js'

/** GatewayMessage is any reply of the gateway extension, as parsed JSON. */
export type GatewayMessage = Record<string, unknown> & {
  status: string
  requestId?: string
  deviceId?: string
}

/** writePolicy writes a gateway policy (and optional allow-list) into a fresh directory; returns the policy file. */
export async function writePolicy(yaml: string, allowList?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-gw-'))
  if (allowList !== undefined) await writeFile(join(dir, 'allow.txt'), allowList)
  const file = join(dir, 'gateways.yaml')
  await writeFile(file, yaml)
  return file
}

/** TestGateway is a gateway connected with MQTT.js, subscribed to its reply topic. */
export interface TestGateway {
  readonly client: MqttClient
  /** batch publishes a batch request and resolves with every reply for its requestId up to the closing one. */
  batch(body: object): Promise<GatewayMessage[]>
  end(): Promise<void>
}

/** connectGateway connects an identity of the test PKI as a gateway, speaking `format` (JSON by default). */
export async function connectGateway(
  bridge: TestBridge,
  id: string,
  format: WireFormat = 'json',
): Promise<TestGateway> {
  const client = await connectTls(bridge.url, tlsFor(bridge, bridge.pki.device(id)))
  const [granted] = await client.subscribeAsync(`registration/${id}/reply${formatSuffix(format)}`, { qos: 1 })
  if (granted?.qos === 128) throw new Error(`subscription to ${id}'s reply topic refused`)
  return {
    client,
    batch(body) {
      const requestId = (body as { requestId?: string }).requestId
      const replies: GatewayMessage[] = []
      return new Promise((resolve, reject) => {
        const onMessage = (_topic: string, payload: Buffer): void => {
          const reply = decodeReply(payload, format) as unknown as GatewayMessage
          if (reply.requestId !== requestId) return
          replies.push(reply)
          if (reply.status === 'complete' || (reply.status === 'rejected' && reply.deviceId === undefined)) {
            client.off('message', onMessage)
            resolve(replies)
          }
        }
        client.on('message', onMessage)
        const batch = { version: 1, extension: 'gateway/1', ...body }
        const payload =
          typeof body === 'string' || Buffer.isBuffer(body)
            ? body
            : format === 'json'
              ? JSON.stringify(batch)
              : Buffer.from(encode(batch))
        client.publishAsync(`registration/request${formatSuffix(format)}`, payload, { qos: 1 }).catch(reject)
      })
    },
    end: () => client.endAsync(true),
  }
}

/** byDevice indexes per-device results by deviceId. */
export function byDevice(replies: readonly GatewayMessage[]): Map<string, GatewayMessage> {
  return new Map(replies.filter((r) => r.deviceId !== undefined).map((r) => [r.deviceId as string, r]))
}
