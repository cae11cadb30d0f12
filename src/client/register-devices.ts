import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { buildCsr } from '../pki/csr-builder.js'
import { generateKey } from '../pki/keys.js'
import type { DeviceRejection, DeviceResult, GatewayReply } from '../protocol/gateway.js'
import type { KeyAlgorithm } from '../protocol/messages.js'
import {
  commonNameOf,
  connectTls,
  credentialsOf,
  type DeviceTls,
  type DownstreamCredentials,
  type RegisterOptions,
  RegistrationRejectedError,
  subscribe,
  wireOf,
} from './register.js'

/** DownstreamDevice is one sensor a gateway registers: with the sensor's own CSR, a key made here, or a server key. */
export interface DownstreamDevice {
  readonly deviceId: string
  /** The sensor's CSR (PEM or base64 DER): its key stays on the sensor. */
  readonly csr?: string
  /** Make the key here (the gateway) and send only a CSR. */
  readonly generateKey?: boolean
  /** The key type: for `generateKey`, or the key the bridge generates when there is no CSR. */
  readonly keyAlgorithm?: KeyAlgorithm
  /** The bridge's key in a PKCS#12 bundle with this password (no CSR): the outcome's credentials carry `pkcs12`. */
  readonly pkcs12Password?: string
}

/** RegisterDevicesOptions configure a gateway's registration of its downstream devices. */
export interface RegisterDevicesOptions
  extends Pick<RegisterOptions, 'url' | 'identity' | 'requestTopic' | 'replyPrefix' | 'timeoutMs' | 'format'>,
    DeviceTls {
  readonly devices: readonly DownstreamDevice[]
  /** Devices per batch message (default 100, the bridge's default gateways.maxDevicesPerBatch). */
  readonly batchSize?: number
  /** Prefix of the batches' requestIds (`<prefix>-<n>`); the same prefix retries the same batches. */
  readonly requestId?: string
  /** An open connection of the gateway to reuse (it must not be subscribed elsewhere for the same topic). */
  readonly client?: MqttClient
}

/** DeviceOutcome is one sensor's answer. */
export type DeviceOutcome =
  | { readonly deviceId: string; readonly status: 'issued'; readonly credentials: DownstreamCredentials }
  | { readonly deviceId: string; readonly status: 'rejected'; readonly error: RegistrationRejectedError }

const rejection = (e: DeviceRejection): RegistrationRejectedError =>
  new RegistrationRejectedError(e.code, e.message, e.retryable, e.retryAfterSeconds, e.reason)

async function wireDevice(device: DownstreamDevice, keys: Map<string, string>): Promise<object> {
  const { deviceId, csr, keyAlgorithm, pkcs12Password } = device
  if (csr !== undefined) return { deviceId, csr }
  if (!device.generateKey)
    return {
      deviceId,
      ...(keyAlgorithm ? { keyAlgorithm } : {}),
      ...(pkcs12Password === undefined ? {} : { pkcs12: { password: pkcs12Password } }),
    }
  const pair = await generateKey(keyAlgorithm ?? 'ECDSA-P256')
  keys.set(deviceId, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())
  return { deviceId, csr: buildCsr(deviceId, pair.privateKey, pair.publicKey) }
}

function outcomeOf(r: DeviceResult, keys: Map<string, string>): DeviceOutcome {
  const { deviceId } = r
  if (r.status !== 'issued') return { deviceId, status: 'rejected', error: rejection(r.error) }
  return { deviceId, status: 'issued', credentials: credentialsOf(r, keys.get(deviceId) ?? r.privateKey) }
}

/**
 * registerDevices registers a gateway's downstream devices over the gateway's own connection with the gateway
 * extension: batches of `batchSize`, one answer per device. A rejected batch (e.g. the identity is not a gateway)
 * throws RegistrationRejectedError; per-device rejections are outcomes, in the order of `devices`.
 */
export async function registerDevices(options: RegisterDevicesOptions): Promise<DeviceOutcome[]> {
  const identity = options.identity ?? commonNameOf(options.certPem)
  const prefix = options.requestId ?? randomUUID()
  const size = options.batchSize ?? 100
  const { codec, requestTopic, replyTopic: topic } = wireOf(options, identity)
  const client = options.client ?? (await connectTls(options.url, options))
  const keys = new Map<string, string>()
  const results = new Map<string, DeviceOutcome>()
  const batches = new Map<string, { resolve: () => void; reject: (err: Error) => void }>()
  const onMessage = (t: string, payload: Buffer): void => {
    if (t !== topic) return
    let reply: GatewayReply & { requestId?: string }
    try {
      reply = codec.decodeReply(payload) as GatewayReply & { requestId?: string }
    } catch {
      return // not a reply of ours: the batches time out rather than the gateway crash
    }
    const batch = reply.requestId === undefined ? undefined : batches.get(reply.requestId)
    if (!batch) return
    if ('deviceId' in reply) results.set(reply.deviceId, outcomeOf(reply, keys))
    else if (reply.status === 'complete') batch.resolve()
    else if (reply.status === 'rejected') batch.reject(rejection(reply.error))
  }
  client.on('message', onMessage)
  const timer = setTimeout(() => {
    for (const b of batches.values()) b.reject(new Error('no answer from the bridge in time'))
  }, options.timeoutMs ?? 120_000)
  try {
    await subscribe(client, topic)
    const sent: Promise<void>[] = []
    for (let i = 0; i * size < options.devices.length; i++) {
      const requestId = `${prefix}-${i + 1}`
      const slice = options.devices.slice(i * size, (i + 1) * size)
      const devices = await Promise.all(slice.map((d) => wireDevice(d, keys)))
      const answered = new Promise<void>((resolve, reject) => batches.set(requestId, { resolve, reject }))
      answered.catch(() => {}) // observed by Promise.all below; a rejection meanwhile must not be "unhandled"
      sent.push(answered)
      const body = { version: 1, extension: 'gateway/1', requestId, devices }
      await client.publishAsync(requestTopic, codec.encodeRequest(body), { qos: 1 })
    }
    await Promise.all(sent)
    const unanswered = {
      code: 'INTERNAL_ERROR',
      message: 'no answer for this device',
      retryable: true,
    } as const
    return options.devices.map(
      (d) =>
        results.get(d.deviceId) ?? { deviceId: d.deviceId, status: 'rejected', error: rejection(unanswered) },
    )
  } finally {
    clearTimeout(timer)
    client.off('message', onMessage)
    if (options.client) await client.unsubscribeAsync(topic).catch(() => {})
    else await client.endAsync(true).catch(() => {})
  }
}
