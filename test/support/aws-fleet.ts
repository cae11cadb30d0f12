import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import mqtt, { type MqttClient } from 'mqtt'
import type { IssuanceRecord } from '../../src/registry/registry.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import type { TestBridge } from './bridge.js'
import { tlsFor } from './device.js'

/** FLEET_TEMPLATES is the provisioning templates file of the AWS tests (docs/aws-fleet-provisioning.md's example). */
export const FLEET_TEMPLATES = `templates:
  - name: FleetTemplate
    identities: ['device-*']
    parameters:
      SerialNumber: { required: true, pattern: 'SN-[0-9]+' }
      Site: { default: factory-1 }
    thingName: '{identity}'
    deviceConfiguration:
      site: '{Site}'
      serial: '{SerialNumber}'
  - name: GatewayTemplate
    identities: ['gateway-*']
`

/** writeTemplates writes a templates file in a new directory and returns its path. */
export async function writeTemplates(text = FLEET_TEMPLATES): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mrb-aws-')), 'templates.yaml')
  await writeFile(file, text)
  return file
}

/** certificatesOf reads an identity's certificates, newest first, from the bridge's registry file (read-only). */
export async function certificatesOf(
  bridge: TestBridge,
  identity: string,
): Promise<readonly IssuanceRecord[]> {
  const registry = new SqliteRegistry(bridge.bridge.config.registry.file, { readonly: true })
  try {
    return (await registry.device(identity))?.certificates ?? []
  } finally {
    await registry.close()
  }
}

/**
 * ageTokens moves every ownership token's expiry of an identity into the past, in the bridge's registry file: the
 * token lifetime elapsed, without waiting for it.
 */
export function ageTokens(bridge: TestBridge, identity: string): void {
  const db = new Database(bridge.bridge.config.registry.file)
  try {
    db.prepare('UPDATE certificates SET token_expires_at = ? WHERE identity = ?').run(
      Date.now() - 1,
      identity,
    )
  } finally {
    db.close()
  }
}

/** AwsMessage is one message an MQTT.js client received. */
export interface AwsMessage {
  readonly topic: string
  readonly payload: Buffer
}

/**
 * AwsClient is an MQTT.js device speaking the AWS topics by hand (for CBOR, bad input and delivery rules: the SDK
 * speaks JSON only and validates what it sends).
 */
export interface AwsClient {
  readonly client: MqttClient
  readonly messages: AwsMessage[]
  /** subscribe subscribes to a request topic's /accepted and /rejected; resolves with the granted QoS of each. */
  subscribe(requestTopic: string): Promise<number[]>
  /** request publishes on a request topic and resolves with the next message on its /accepted or /rejected. */
  request(requestTopic: string, payload: string | Buffer): Promise<AwsMessage>
  end(): Promise<void>
}

/** connectAwsClient connects MQTT.js with an identity's factory certificate (or `files`). */
export async function connectAwsClient(
  bridge: TestBridge,
  id: string,
  files?: { certFile: string; keyFile: string },
): Promise<AwsClient> {
  const tls = tlsFor(bridge, files ?? bridge.pki.device(id))
  const client = await mqtt.connectAsync(bridge.url, {
    cert: tls.certPem,
    key: tls.keyPem,
    ca: tls.caPem,
    reconnectPeriod: 0,
    protocolVersion: 4,
  })
  const messages: AwsMessage[] = []
  const waiters: { topics: string[]; resolve: (m: AwsMessage) => void }[] = []
  client.on('message', (topic, payload) => {
    const message = { topic, payload }
    messages.push(message)
    const at = waiters.findIndex((w) => w.topics.includes(topic))
    if (at >= 0) waiters.splice(at, 1)[0]?.resolve(message)
  })
  const replies = (topic: string): string[] => [`${topic}/accepted`, `${topic}/rejected`]
  return {
    client,
    messages,
    subscribe: async (topic) => (await client.subscribeAsync(replies(topic), { qos: 1 })).map((g) => g.qos),
    request: async (topic, payload) => {
      const answer = new Promise<AwsMessage>((resolve) => waiters.push({ topics: replies(topic), resolve }))
      await client.publishAsync(topic, payload, { qos: 1 })
      return answer
    },
    end: () => client.endAsync(true),
  }
}
