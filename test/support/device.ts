import { readFileSync } from 'node:fs'
import { decode, encode } from 'cborg'
import mqtt, { type MqttClient } from 'mqtt'
import { connectTls, type DeviceTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { WireFormat } from '../../src/protocol/codec/codecs.js'
import type { Reply } from '../../src/protocol/messages.js'
import type { TestBridge } from './bridge.js'

/** tlsFor reads a device's factory certificate and key from the test PKI. */
export function tlsFor(bridge: TestBridge, files: { certFile: string; keyFile: string }): DeviceTls {
  return {
    certPem: readFileSync(files.certFile, 'utf8'),
    keyPem: readFileSync(files.keyFile, 'utf8'),
    caPem: readFileSync(bridge.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
  }
}

/** TestDevice is a connected MQTT.js device subscribed to its reply topic, collecting replies. */
export interface TestDevice {
  readonly client: MqttClient
  readonly replies: Reply[]
  /** nextReply resolves with the next final (not pending) reply, or the next reply of any kind. */
  nextReply(options?: { includePending?: boolean }): Promise<Reply>
  send(payload: string | Buffer | object): Promise<void>
  end(): Promise<void>
}

/** formatSuffix is the topic level a wire format adds to the request and reply topics. */
export const formatSuffix = (format: WireFormat): string => (format === 'json' ? '' : `/${format}`)

/** decodeReply reads a reply in a wire format (CBOR: as cborg reads it, byte strings as Uint8Array). */
export const decodeReply = (payload: Buffer, format: WireFormat = 'json'): Reply =>
  (format === 'json' ? JSON.parse(payload.toString('utf8')) : decode(payload)) as Reply

/**
 * connectDevice connects a device with its factory certificate (or `tls`) and subscribes to its reply topic of
 * `format` (JSON by default), where it sends its requests too.
 */
export async function connectDevice(
  bridge: TestBridge,
  id: string,
  options: {
    subscribe?: boolean
    format?: WireFormat
    tls?: DeviceTls
    /** A session of this client id, persistent unless `clean` (default: a clean session, a generated id). */
    session?: { clientId: string; clean: boolean }
  } = {},
): Promise<TestDevice> {
  const format = options.format ?? 'json'
  const tls = options.tls ?? tlsFor(bridge, bridge.pki.device(id))
  const { session } = options
  const client = session
    ? await mqtt.connectAsync(bridge.url, {
        ...{ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, reconnectPeriod: 0, protocolVersion: 4 },
        ...session,
      })
    : await connectTls(bridge.url, tls)
  const replies: Reply[] = []
  const waiters: { includePending: boolean; resolve: (r: Reply) => void }[] = []
  let cursor = 0
  const pump = (): void => {
    while (waiters.length > 0 && cursor < replies.length) {
      const reply = replies[cursor++] as Reply
      const waiter = waiters[0]
      if (!waiter) return
      if (reply.status === 'pending' && !waiter.includePending) continue
      waiters.shift()
      waiter.resolve(reply)
    }
  }
  client.on('message', (_topic, payload) => {
    replies.push(decodeReply(payload, format))
    pump()
  })
  if (options.subscribe !== false) {
    const [granted] = await client.subscribeAsync(`registration/${id}/reply${formatSuffix(format)}`, {
      qos: 1,
    })
    if (granted?.qos === 128) throw new Error(`subscription to ${id}'s reply topic refused`)
  }
  return {
    client,
    replies,
    nextReply: (o = {}) =>
      new Promise((resolve) => {
        waiters.push({ includePending: o.includePending === true, resolve })
        pump()
      }),
    send: async (payload) => {
      const body =
        typeof payload === 'string' || Buffer.isBuffer(payload)
          ? payload
          : format === 'json'
            ? JSON.stringify(payload)
            : Buffer.from(encode(payload))
      await client.publishAsync(`registration/request${formatSuffix(format)}`, body, { qos: 1 })
    },
    end: () => client.endAsync(true),
  }
}

/** grantedQos subscribes and returns the QoS the SUBACK granted (128 = refused). */
export function grantedQos(client: MqttClient, topic: string, qos: 0 | 1 | 2): Promise<number | undefined> {
  return new Promise((resolve) => {
    client.subscribe(topic, { qos }, (err, granted) => {
      const refused = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted
      resolve(refused ? refused[0] : granted?.[0]?.qos)
    })
  })
}

/** mosquittoArgs are mosquitto_pub/mosquitto_sub's connection flags for a device of the bridge's test PKI. */
export function mosquittoArgs(bridge: Pick<TestBridge, 'port' | 'pki'>, id: string): string[] {
  const { certFile, keyFile } = bridge.pki.device(id)
  const ca = bridge.pki.file(DEV_PKI_FILES.issuingCaCert)
  return ['-h', 'localhost', '-p', String(bridge.port), '--cafile', ca, '--cert', certFile, '--key', keyFile]
}
