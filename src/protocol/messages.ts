import { type Codec, codecOf } from './codec/codecs.js'
import { type ErrorCode, RegistrationError } from './errors.js'
import { Payload } from './payload.js'
import { type Pkcs12Request, readPkcs12 } from './pkcs12.js'

/** KEY_ALGORITHMS are the key types the bridge can generate (and accept in CSRs). */
export const KEY_ALGORITHMS = [
  'ECDSA-P256',
  'ECDSA-P384',
  'Ed25519',
  'RSA-2048',
  'RSA-3072',
  'RSA-4096',
] as const

/** KeyAlgorithm names a key type and size. */
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number]

/** PROTOCOL_VERSION is the version of the wire protocol this bridge speaks. */
export const PROTOCOL_VERSION = 1

/** RegistrationRequest is a decoded, validated request. */
export interface RegistrationRequest {
  readonly requestId?: string
  /** The CSR as the device sent it (PEM or base64 DER; CBOR DER bytes as base64); parsed later by the issuance path. */
  readonly csr?: string
  readonly keyAlgorithm?: KeyAlgorithm
  /** Answer with a PKCS#12 bundle instead of a PEM key (server-key mode); its password never shows. */
  readonly pkcs12?: Pkcs12Request
}

const REQUEST_FIELDS = new Set(['version', 'requestId', 'csr', 'keyAlgorithm', 'pkcs12'])
/** REQUEST_ID_PATTERN is a requestId: 1-128 printable ASCII characters. */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/

/** malformed is MALFORMED_REQUEST: the payload is not of the documented shape. */
export const malformed = (message: string): RegistrationError =>
  new RegistrationError('MALFORMED_REQUEST', message)

/** checkVersion refuses a `version` of the wrong type (MALFORMED_REQUEST) or another one (UNSUPPORTED_VERSION). */
export function checkVersion(version: unknown): void {
  if (version !== undefined && typeof version !== 'number') throw malformed('version must be a number')
  if (version !== undefined && version !== PROTOCOL_VERSION) {
    throw new RegistrationError('UNSUPPORTED_VERSION', `version must be ${PROTOCOL_VERSION}`)
  }
}

/** printableName is a field name as a reply may echo it: printable ASCII (others become ?), at most 64 characters. */
const printableName = (name: string): string => {
  const shown = [...name].slice(0, 64).map((c) => (/^[\x20-\x7e]$/.test(c) ? c : '?'))
  return shown.join('') + (name.length > 64 ? '…' : '')
}

/** checkFields refuses a field the protocol does not define (UNKNOWN_FIELD); `at` says where, in a batch. */
export function checkFields(fields: Record<string, unknown>, known: ReadonlySet<string>, at = ''): void {
  const unknown = Object.keys(fields).find((key) => !known.has(key))
  if (unknown !== undefined)
    throw new RegistrationError('UNKNOWN_FIELD', `unknown field "${at}${printableName(unknown)}"`)
}

/** unknownKeyAlgorithm is the refusal (KEY_NOT_ALLOWED) of a keyAlgorithm the protocol does not name. */
export const unknownKeyAlgorithm = (keyAlgorithm: unknown): RegistrationError | undefined =>
  keyAlgorithm === undefined || (KEY_ALGORITHMS as readonly unknown[]).includes(keyAlgorithm)
    ? undefined
    : new RegistrationError('KEY_NOT_ALLOWED', `keyAlgorithm must be one of ${KEY_ALGORITHMS.join(', ')}`)

/**
 * readCsr reads a `csr` field: a non-empty text string (PEM or base64 DER) or, in CBOR, a non-empty byte string
 * (DER), which becomes its base64 so that a CSR is one request in either format. undefined when absent.
 */
export function readCsr(csr: unknown, at = ''): string | undefined {
  if (csr instanceof Uint8Array && csr.length > 0) return Buffer.from(csr).toString('base64')
  if (csr !== undefined && (typeof csr !== 'string' || csr.length === 0))
    throw malformed(`${at}csr must be a non-empty string (or, in CBOR, byte string)`)
  return csr
}

/** decodeRequest validates a request payload; every failure is a RegistrationError with a wire code. */
export function decodeRequest(payload: Buffer | Payload, maxBytes: number): RegistrationRequest {
  const { size } = payload instanceof Payload ? payload : { size: payload.length }
  if (size > maxBytes) {
    throw new RegistrationError('REQUEST_TOO_LARGE', `request is ${size} bytes; the limit is ${maxBytes}`)
  }
  const fields = Payload.of(payload).object()
  checkFields(fields, REQUEST_FIELDS)
  const { version, requestId, keyAlgorithm } = fields
  checkVersion(version)
  if (requestId !== undefined && (typeof requestId !== 'string' || !REQUEST_ID_PATTERN.test(requestId)))
    throw malformed('requestId must be 1-128 printable ASCII characters')
  const csr = readCsr(fields.csr)
  const pkcs12 = readPkcs12(fields.pkcs12, csr)
  if (keyAlgorithm !== undefined && typeof keyAlgorithm !== 'string')
    throw malformed('keyAlgorithm must be a string')
  const refused = unknownKeyAlgorithm(keyAlgorithm)
  if (refused) throw refused
  if (csr !== undefined && keyAlgorithm !== undefined)
    throw malformed('csr and keyAlgorithm are mutually exclusive')
  return {
    ...(requestId === undefined ? {} : { requestId: requestId as string }),
    ...(csr === undefined ? {} : { csr }),
    ...(keyAlgorithm === undefined ? {} : { keyAlgorithm: keyAlgorithm as KeyAlgorithm }),
    ...(pkcs12 === undefined ? {} : { pkcs12 }),
  }
}

/** IssuedReply carries the credentials. */
export interface IssuedReply {
  readonly status: 'issued'
  readonly requestId?: string
  /** PEM: the device certificate followed by any intermediates. */
  readonly certificate: string
  /** PEM: the CA certificates the device should trust (issuing CA, production broker CA). */
  readonly caCertificates: string
  /** PEM PKCS#8: present only when the bridge generated the key and no bundle was asked for. */
  readonly privateKey?: string
  /** Base64 DER of a PKCS#12 bundle (key, certificate, chain): instead of `privateKey`, when the request asked. */
  readonly pkcs12?: string
  readonly serialNumber: string
  readonly notBefore: string
  readonly notAfter: string
  readonly endpoint?: { readonly url: string }
}

/** PendingReply tells the device that issuance is under way. */
export interface PendingReply {
  readonly status: 'pending'
  readonly requestId?: string
}

/** RejectedReply carries a wire error. */
export interface RejectedReply {
  readonly status: 'rejected'
  readonly requestId?: string
  readonly error: {
    readonly code: ErrorCode
    readonly message: string
    readonly retryable: boolean
    readonly retryAfterSeconds?: number
  }
}

/** Reply is any message the bridge sends on a reply topic. */
export type Reply = IssuedReply | PendingReply | RejectedReply

/** rejectedReply turns a typed error into its wire form. */
export function rejectedReply(err: RegistrationError, requestId: string | undefined): RejectedReply {
  return {
    status: 'rejected',
    ...(requestId === undefined ? {} : { requestId }),
    error: {
      code: err.code,
      message: err.message,
      retryable: err.retryable,
      ...(err.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: err.retryAfterSeconds }),
    },
  }
}

/** encodeReply serialises a reply with the protocol version first, in the request's format (JSON by default). */
export function encodeReply(reply: Reply, codec: Codec = codecOf('json')): Buffer {
  return codec.encode({ version: PROTOCOL_VERSION, ...reply })
}

/** peekRequestId extracts a valid requestId from a payload that failed validation, so rejections can echo it. */
export function peekRequestId(payload: Buffer | Payload): string | undefined {
  const id = Payload.of(payload).peek()?.requestId
  return typeof id === 'string' && REQUEST_ID_PATTERN.test(id) ? id : undefined
}
