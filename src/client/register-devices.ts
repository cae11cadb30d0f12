import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { buildCsr } from '../pki/csr-builder.js'
import { generateKey } from '../pki/keys.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { KeyAlgorithm } from '../protocol/messages.js'
import { commonNameOf, connectTls, type DeviceTls, RegistrationRejectedError } from './register.js'

/** DownstreamDevice is one sensor a gateway registers: with the sensor's own CSR, a key made here, or a server key. */
export interface DownstreamDevice {
  readonly deviceId: string
  /** The sensor's CSR (PEM or base64 DER): its key stays on the sensor. */
  readonly csr?: string
  /** Make the key here (the gateway) and send only a CSR. */
  readonly generateKey?: boolean
  /** The key type: for `generateKey`, or the key the bridge generates when there is no CSR. */
  readonly keyAlgorithm?: KeyAlgorithm
}

/** RegisterDevicesOptions configure a gateway's registration of its downstream devices. */
export interface RegisterDevicesOptions extends DeviceTls {
  readonly url: string
  readonly devices: readonly DownstreamDevice[]
  /** Devices per batch message (default 100, the bridge's default gateways.maxDevicesPerBatch). */
  readonly batchSize?: number
  /** Prefix of the batches' requestIds (`<prefix>-<n>`); the same prefix retries the same batches. */
  readonly requestId?: string
  /** Defaults to the CN of the gateway's factory certificate. */
  readonly identity?: string
  readonly requestTopic?: string
  readonly replyPrefix?: string
  readonly timeoutMs?: number
  /** An open connection of the gateway to reuse (it must not be subscribed elsewhere for the same topic). */
  readonly client?: MqttClient
}

/** DownstreamCredentials are a sensor's credentials; privateKeyPem is absent when the sensor made its own key. */
export interface DownstreamCredentials {
  readonly certificatePem: string
  readonly caCertificatesPem: string
  readonly privateKeyPem?: string
  readonly serialNumber: string
  readonly notBefore: string
  readonly notAfter: string
  readonly endpointUrl: string | undefined
}

/** DeviceOutcome is one sensor's answer. */
export type DeviceOutcome =
  | { readonly deviceId: string; readonly status: 'issued'; readonly credentials: DownstreamCredentials }
  | {
      readonly deviceId: string
      readonly status: 'rejected'
      readonly error: RegistrationRejectedError & { reason?: string }
    }

interface WireResult {
  requestId?: string
  deviceId?: string
  status: string
  certificate?: string
  caCertificates?: string
  privateKey?: string
  serialNumber?: string
  notBefore?: string
  notAfter?: string
  endpoint?: { url: string }
  error?: {
    code: ErrorCode
    message: string
    retryable: boolean
    retryAfterSeconds?: number
    reason?: string
  }
}

function rejection(e: NonNullable<WireResult['error']>): RegistrationRejectedError & { reason?: string } {
  const err = new RegistrationRejectedError(e.code, e.message, e.retryable, e.retryAfterSeconds)
  return e.reason === undefined ? err : Object.assign(err, { reason: e.reason })
}

async function wireDevice(device: DownstreamDevice, keys: Map<string, string>): Promise<object> {
  if (device.csr !== undefined) return { deviceId: device.deviceId, csr: device.csr }
  if (!device.generateKey) {
    return {
      deviceId: device.deviceId,
      ...(device.keyAlgorithm ? { keyAlgorithm: device.keyAlgorithm } : {}),
    }
  }
  const pair = await generateKey(device.keyAlgorithm ?? 'ECDSA-P256')
  keys.set(device.deviceId, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())
  return { deviceId: device.deviceId, csr: buildCsr(device.deviceId, pair.privateKey, pair.publicKey) }
}

function outcomeOf(r: WireResult, keys: Map<string, string>): DeviceOutcome {
  const deviceId = r.deviceId ?? ''
  if (r.status !== 'issued')
    return {
      deviceId,
      status: 'rejected',
      error: rejection(r.error ?? { code: 'INTERNAL_ERROR', message: 'no error', retryable: true }),
    }
  const privateKeyPem = keys.get(deviceId) ?? r.privateKey
  return {
    deviceId,
    status: 'issued',
    credentials: {
      certificatePem: r.certificate ?? '',
      caCertificatesPem: r.caCertificates ?? '',
      ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
      serialNumber: r.serialNumber ?? '',
      notBefore: r.notBefore ?? '',
      notAfter: r.notAfter ?? '',
      endpointUrl: r.endpoint?.url,
    },
  }
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
  const topic = `${options.replyPrefix ?? 'registration'}/${identity}/reply`
  const client = options.client ?? (await connectTls(options.url, options))
  const keys = new Map<string, string>()
  const results = new Map<string, DeviceOutcome>()
  const batches = new Map<string, { resolve: () => void; reject: (err: Error) => void }>()
  const onMessage = (t: string, payload: Buffer): void => {
    if (t !== topic) return
    const reply = JSON.parse(payload.toString('utf8')) as WireResult
    const batch = reply.requestId === undefined ? undefined : batches.get(reply.requestId)
    if (!batch) return
    if (reply.deviceId !== undefined) results.set(reply.deviceId, outcomeOf(reply, keys))
    else if (reply.status === 'complete') batch.resolve()
    else if (reply.status === 'rejected' && reply.error) batch.reject(rejection(reply.error))
  }
  client.on('message', onMessage)
  const timer = setTimeout(() => {
    for (const b of batches.values()) b.reject(new Error('no answer from the bridge in time'))
  }, options.timeoutMs ?? 120_000)
  try {
    const [granted] = await client.subscribeAsync(topic, { qos: 1 })
    if (!granted || granted.qos === 128) throw new Error(`the bridge refused the subscription to ${topic}`)
    const sent: Promise<void>[] = []
    for (let i = 0; i * size < options.devices.length; i++) {
      const requestId = `${prefix}-${i + 1}`
      const slice = options.devices.slice(i * size, (i + 1) * size)
      const devices = await Promise.all(slice.map((d) => wireDevice(d, keys)))
      const answered = new Promise<void>((resolve, reject) => batches.set(requestId, { resolve, reject }))
      answered.catch(() => {}) // observed by Promise.all below; a rejection meanwhile must not be "unhandled"
      sent.push(answered)
      const body = { version: 1, extension: 'gateway/1', requestId, devices }
      await client.publishAsync(options.requestTopic ?? 'registration/request', JSON.stringify(body), {
        qos: 1,
      })
    }
    await Promise.all(sent)
    return options.devices.map(
      (d) =>
        results.get(d.deviceId) ?? {
          deviceId: d.deviceId,
          status: 'rejected',
          error: new RegistrationRejectedError(
            'INTERNAL_ERROR',
            'no answer for this device',
            true,
            undefined,
          ),
        },
    )
  } finally {
    clearTimeout(timer)
    client.off('message', onMessage)
    if (options.client) await client.unsubscribeAsync(topic).catch(() => {})
    else await client.endAsync(true).catch(() => {})
  }
}
