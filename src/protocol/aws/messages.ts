import { encode } from 'cborg'
import { codecOf, type WireFormat } from '../codec/codecs.js'
import { type ErrorCode, RegistrationError } from '../errors.js'
import type { RegistrationRequest } from '../messages.js'

/**
 * The payloads of AWS IoT fleet provisioning (docs/aws-fleet-provisioning.md): requests read into protocol v1's
 * RegistrationRequest (the create calls) or a RegisterThingRequest, answers written as AWS writes them, in JSON or
 * CBOR (text strings, integer statusCode: what the embedded-C/tinycbor clients require). Unknown request fields are
 * ignored, as AWS does (older SDKs send `templateName` in the body).
 */

/** AwsError is a refusal in AWS's shape: an HTTP-like statusCode and a stable PascalCase errorCode. */
export class AwsError extends Error {
  override readonly name = 'AwsError'
  constructor(
    readonly statusCode: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * AWS_ERRORS maps each protocol-v1 error code to its AWS shape (docs/aws-fleet-provisioning.md, "Errors"). AWS
 * documents the shape, not the values; these follow HTTP and the codes seen from AWS in the wild.
 */
export const AWS_ERRORS: Readonly<Record<ErrorCode, readonly [number, string]>> = {
  MALFORMED_REQUEST: [400, 'InvalidPayload'],
  REQUEST_TOO_LARGE: [400, 'InvalidPayload'],
  UNKNOWN_FIELD: [400, 'InvalidPayload'],
  UNSUPPORTED_VERSION: [400, 'InvalidPayload'],
  CSR_UNREADABLE: [400, 'InvalidCSR'],
  CSR_SIGNATURE_INVALID: [400, 'InvalidCSR'],
  CSR_IDENTITY_MISMATCH: [400, 'InvalidCSR'],
  KEY_NOT_ALLOWED: [400, 'InvalidCSR'],
  EXTENSION_NOT_ALLOWED: [400, 'InvalidCSR'],
  NOT_AUTHORIZED: [403, 'AccessDenied'],
  REGISTRATION_DENIED: [403, 'AccessDenied'],
  RENEWAL_NOT_DUE: [403, 'AccessDenied'],
  RATE_LIMITED: [429, 'Throttling'],
  REGISTRATION_IN_PROGRESS: [409, 'ConflictingRequest'],
  ISSUANCE_FAILED: [500, 'InternalFailure'],
  INTERNAL_ERROR: [500, 'InternalFailure'],
  ISSUANCE_TIMEOUT: [503, 'ServiceUnavailable'],
  ISSUER_UNAVAILABLE: [503, 'ServiceUnavailable'],
  HOOK_UNAVAILABLE: [503, 'ServiceUnavailable'],
}

/**
 * invalidPayload is MALFORMED_REQUEST (400 InvalidPayload): the body is not of the documented shape. A v1 code, so
 * that a create call's bad body is counted and rate-limited as a v1 request's.
 */
export const invalidPayload = (message: string): RegistrationError =>
  new RegistrationError('MALFORMED_REQUEST', message)

/** invalidToken is 400 InvalidCertificateOwnershipToken: missing, unknown, expired, used, or another's. */
export const invalidToken = (message: string): AwsError =>
  new AwsError(400, 'InvalidCertificateOwnershipToken', message)

/** toAwsError gives any failure its AWS shape; a RegistrationError keeps its message, with its v1 code after it. */
export function toAwsError(err: unknown): AwsError {
  if (err instanceof AwsError) return err
  if (!(err instanceof RegistrationError)) return new AwsError(500, 'InternalFailure', 'internal error')
  const [statusCode, errorCode] = AWS_ERRORS[err.code]
  const retry = err.retryAfterSeconds === undefined ? '' : `; retry after ${err.retryAfterSeconds} s`
  return new AwsError(statusCode, errorCode, `${err.message}${retry} (${err.code})`)
}

/** decodeAwsBody reads a request body: empty (AWS's "empty message payload") is `{}`. */
export function decodeAwsBody(bytes: Buffer, format: WireFormat, maxBytes: number): Record<string, unknown> {
  if (bytes.length > maxBytes)
    throw new RegistrationError(
      'REQUEST_TOO_LARGE',
      `request is ${bytes.length} bytes; the limit is ${maxBytes}`,
    )
  if (bytes.length === 0) return {}
  return codecOf(format).decode(bytes) // MALFORMED_REQUEST when unreadable
}

/** createRequestOf: CreateKeysAndCertificate asks for a key made by the bridge (the default algorithm). */
export const createRequestOf = (_body: Record<string, unknown>): RegistrationRequest => ({})

/** csrRequestOf: CreateCertificateFromCsr's `certificateSigningRequest` (PEM, a text string) is the CSR. */
export function csrRequestOf(body: Record<string, unknown>): RegistrationRequest {
  const csr = body.certificateSigningRequest
  if (typeof csr !== 'string' || csr.length === 0)
    throw invalidPayload('certificateSigningRequest must be a non-empty string (PEM)')
  return { csr }
}

/** RegisterThingRequest is a RegisterThing body read: the token and the template's parameters. */
export interface RegisterThingRequest {
  readonly certificateOwnershipToken: string
  readonly parameters: Readonly<Record<string, string>>
}

/** registerThingRequestOf validates a RegisterThing body. */
export function registerThingRequestOf(body: Record<string, unknown>): RegisterThingRequest {
  const token = body.certificateOwnershipToken
  if (token === undefined || token === '') throw invalidToken('Certificate ownership token cannot be empty.')
  if (typeof token !== 'string') throw invalidPayload('certificateOwnershipToken must be a string')
  const parameters = body.parameters ?? {}
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
    throw invalidPayload('parameters must be a map of strings')
  for (const [name, value] of Object.entries(parameters))
    if (typeof value !== 'string') throw invalidPayload(`parameters.${name} must be a string`)
  return { certificateOwnershipToken: token, parameters: parameters as Record<string, string> }
}

/** CreateAccepted is the accepted answer of both create calls (no privateKey for a CSR). */
export interface CreateAccepted {
  readonly certificateId: string
  readonly certificatePem: string
  readonly privateKey?: string
  readonly certificateOwnershipToken: string
}

/** RegisterThingAccepted is RegisterThing's accepted answer. */
export interface RegisterThingAccepted {
  readonly deviceConfiguration: Readonly<Record<string, string>>
  readonly thingName: string
}

/** encodeAws writes an answer in the request's format: JSON, or CBOR with text strings and integers only. */
export function encodeAws(
  body: CreateAccepted | RegisterThingAccepted | Readonly<Record<string, unknown>>,
  format: WireFormat,
): Buffer {
  return format === 'cbor' ? Buffer.from(encode(body)) : Buffer.from(JSON.stringify(body))
}

/** rejectedBody is the `/rejected` answer of a failure. */
export function rejectedBody(err: AwsError): Record<string, unknown> {
  return { statusCode: err.statusCode, errorCode: err.errorCode, errorMessage: err.message }
}
