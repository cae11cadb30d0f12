import { type Codec, codecOf } from './codec/codecs.js'
import { RegistrationError } from './errors.js'
import {
  checkFields,
  checkVersion,
  type IssuedReply,
  type KeyAlgorithm,
  malformed,
  PROTOCOL_VERSION,
  REQUEST_ID_PATTERN,
  type RegistrationRequest,
  type RejectedReply,
  readCsr,
  unknownKeyAlgorithm,
} from './messages.js'
import { Payload } from './payload.js'
import { readPkcs12 } from './pkcs12.js'
import { isSafeIdentity } from './topics.js'

/** GATEWAY_EXTENSION names the gateway batch extension of protocol v1 and its version. */
export const GATEWAY_EXTENSION = 'gateway/1'

/** DownstreamRequest is one device of a batch: its identity and either its CSR or the key to generate. */
export interface DownstreamRequest extends RegistrationRequest {
  readonly deviceId: string
  /** Why this device alone is refused (an unknown keyAlgorithm), judged per device like its CSR. */
  readonly refused?: RegistrationError
}

/** GatewayBatch is a decoded, validated batch request. */
export interface GatewayBatch {
  readonly requestId: string
  readonly devices: readonly DownstreamRequest[]
}

/** GatewayLimits bound a batch. */
export interface GatewayLimits {
  readonly maxRequestBytes: number
  readonly maxDevicesPerBatch: number
}

const BATCH_FIELDS = new Set(['version', 'extension', 'requestId', 'devices'])
const DEVICE_FIELDS = new Set(['deviceId', 'csr', 'keyAlgorithm', 'pkcs12'])

/**
 * isGatewayPayload tells cheaply whether a request payload uses the extension: it has a top-level `extension`
 * field. The byte search keeps v1 requests on their path without decoding them here.
 */
export function isGatewayPayload(payload: Buffer | Payload): boolean {
  const opened = Payload.of(payload)
  return opened.mayHaveField('extension') && opened.peek()?.extension !== undefined
}

function decodeDevice(entry: unknown, index: number): DownstreamRequest {
  const at = `devices[${index}]`
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw malformed(`${at} must be an object`)
  const fields = entry as Record<string, unknown>
  checkFields(fields, DEVICE_FIELDS, `${at}.`)
  const { deviceId, keyAlgorithm } = fields
  if (typeof deviceId !== 'string' || !isSafeIdentity(deviceId)) {
    throw malformed(`${at}.deviceId must be 1-128 of A-Z a-z 0-9 . _ - starting alphanumeric`)
  }
  const csr = readCsr(fields.csr, `${at}.`)
  if (keyAlgorithm !== undefined && typeof keyAlgorithm !== 'string')
    throw malformed(`${at}.keyAlgorithm must be a string`)
  if (csr !== undefined && keyAlgorithm !== undefined)
    throw malformed(`${at}: csr and keyAlgorithm are exclusive`)
  const pkcs12 = readPkcs12(fields.pkcs12, csr, `${at}.`)
  // the key is the device's business: an unknown one refuses this device, not the batch
  const refused = unknownKeyAlgorithm(keyAlgorithm)
  if (refused) return { deviceId, refused }
  return {
    deviceId,
    ...(csr === undefined ? {} : { csr }),
    ...(keyAlgorithm === undefined ? {} : { keyAlgorithm: keyAlgorithm as KeyAlgorithm }),
    ...(pkcs12 === undefined ? {} : { pkcs12 }),
  }
}

/**
 * openGatewayBatch checks what comes first: the size, that it is a JSON object, and the protocol version and
 * extension (of the wrong type: MALFORMED_REQUEST; any other number or string: UNSUPPORTED_VERSION, whoever sends
 * it); readGatewayBatch then reads the rest.
 */
export function openGatewayBatch(payload: Buffer | Payload, limits: GatewayLimits): Record<string, unknown> {
  const opened = Payload.of(payload)
  if (opened.size > limits.maxRequestBytes) {
    throw new RegistrationError(
      'REQUEST_TOO_LARGE',
      `batch is ${opened.size} bytes; the limit is ${limits.maxRequestBytes}`,
    )
  }
  const fields = opened.object()
  const { version, extension } = fields
  // a wrong type (version's first) is MALFORMED_REQUEST, as in a v1 request; only a well-typed other value is
  // another version
  const versionTyped = version === undefined || typeof version === 'number'
  if (versionTyped && typeof extension !== 'string') throw malformed('extension must be a string')
  checkVersion(version)
  if (extension !== GATEWAY_EXTENSION) {
    throw new RegistrationError('UNSUPPORTED_VERSION', `extension must be "${GATEWAY_EXTENSION}"`)
  }
  return fields
}

/** readGatewayBatch validates an opened batch; any structural problem refuses the whole batch (nothing is issued). */
export function readGatewayBatch(fields: Record<string, unknown>, limits: GatewayLimits): GatewayBatch {
  checkFields(fields, BATCH_FIELDS)
  const { requestId, devices } = fields
  if (typeof requestId !== 'string' || !REQUEST_ID_PATTERN.test(requestId)) {
    throw malformed('requestId is required: 1-128 printable ASCII characters')
  }
  if (!Array.isArray(devices) || devices.length === 0) throw malformed('devices must be a non-empty array')
  if (devices.length > limits.maxDevicesPerBatch) {
    throw new RegistrationError(
      'REQUEST_TOO_LARGE',
      `batch names ${devices.length} devices; the limit is ${limits.maxDevicesPerBatch}`,
    )
  }
  const decoded = devices.map(decodeDevice)
  const seen = new Set<string>()
  for (const d of decoded) {
    if (seen.has(d.deviceId)) throw malformed(`device "${d.deviceId}" appears twice`)
    seen.add(d.deviceId)
  }
  return { requestId, devices: decoded }
}

/** decodeGatewayBatch validates a batch: openGatewayBatch, then readGatewayBatch. */
export function decodeGatewayBatch(payload: Buffer | Payload, limits: GatewayLimits): GatewayBatch {
  return readGatewayBatch(openGatewayBatch(payload, limits), limits)
}

/** DeviceRejection is a RejectedReply's error with the policy reason, when policy refused. */
export type DeviceRejection = RejectedReply['error'] & { readonly reason?: string }

/** DeviceResult is the answer for one downstream device. */
export type DeviceResult =
  | (Omit<IssuedReply, 'requestId'> & { readonly deviceId: string })
  | { readonly status: 'rejected'; readonly deviceId: string; readonly error: DeviceRejection }

/** BatchComplete closes a batch: every device has been answered. */
export interface BatchComplete {
  readonly status: 'complete'
  readonly issued: number
  readonly rejected: number
}

/** GatewayReply is any message of the extension on the gateway's reply topic. */
export type GatewayReply = DeviceResult | BatchComplete | Omit<RejectedReply, 'requestId'>

/** encodeGatewayReply serialises a reply (version, extension and requestId first) in the batch's format. */
export function encodeGatewayReply(
  requestId: string | undefined,
  reply: GatewayReply,
  codec: Codec = codecOf('json'),
): Buffer {
  return codec.encode({
    version: PROTOCOL_VERSION,
    extension: GATEWAY_EXTENSION,
    ...(requestId === undefined ? {} : { requestId }),
    ...reply,
  })
}
