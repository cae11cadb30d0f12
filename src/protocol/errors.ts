/**
 * The closed list of registration error codes. Each code is part of the wire protocol
 * (docs/protocol.md, "Error codes"): stable, never renamed, and tied to the docs by a test.
 */
export const ERROR_CODES = {
  MALFORMED_REQUEST: {
    retryable: false,
    summary: 'The payload is not a JSON object of the documented shape.',
  },
  REQUEST_TOO_LARGE: { retryable: false, summary: 'The payload is larger than the configured limit.' },
  UNKNOWN_FIELD: { retryable: false, summary: 'The request has a field that protocol v1 does not define.' },
  UNSUPPORTED_VERSION: {
    retryable: false,
    summary: 'The request asks for a protocol version the bridge does not speak.',
  },
  CSR_UNREADABLE: { retryable: false, summary: 'The CSR is not PEM or base64 DER PKCS#10.' },
  CSR_SIGNATURE_INVALID: {
    retryable: false,
    summary: 'The CSR signature does not verify with its own public key.',
  },
  CSR_IDENTITY_MISMATCH: { retryable: false, summary: "The CSR's subject names another identity." },
  KEY_NOT_ALLOWED: { retryable: false, summary: 'The key algorithm or size is not allowed.' },
  EXTENSION_NOT_ALLOWED: {
    retryable: false,
    summary: 'The CSR requests an extension the bridge never grants (e.g. CA).',
  },
  NOT_AUTHORIZED: { retryable: false, summary: 'This identity may not obtain this certificate.' },
  RATE_LIMITED: {
    retryable: true,
    summary: 'Too many requests from this identity; retry after the given delay.',
  },
  REGISTRATION_IN_PROGRESS: {
    retryable: true,
    summary: 'Another registration for this identity is in flight; retry when it has been answered.',
  },
  ISSUANCE_FAILED: { retryable: false, summary: 'The issuer refused or failed to issue the certificate.' },
  ISSUANCE_TIMEOUT: { retryable: true, summary: 'Issuance took longer than the configured timeout.' },
  ISSUER_UNAVAILABLE: { retryable: true, summary: 'The issuer cannot be reached right now.' },
  INTERNAL_ERROR: { retryable: true, summary: 'An unexpected error in the bridge; details are in its log.' },
  REGISTRATION_DENIED: {
    retryable: false,
    summary: "The operator's registration hook denied this registration; the message is the hook's reason.",
  },
  HOOK_UNAVAILABLE: {
    retryable: true,
    summary:
      'The registration hook could not be asked (timeout, error, bad answer); retry after the given delay.',
  },
  RENEWAL_NOT_DUE: {
    retryable: true,
    summary: 'A renewal came before the renewal window opened; retry after the given delay.',
  },
} as const satisfies Record<string, { retryable: boolean; summary: string }>

/** ErrorCode is the union of every wire error code. */
export type ErrorCode = keyof typeof ERROR_CODES

/** RegistrationError is a typed error whose `code` is the wire code sent to the device. */
export class RegistrationError extends Error {
  override readonly name = 'RegistrationError'
  readonly code: ErrorCode
  readonly retryable: boolean
  readonly retryAfterSeconds: number | undefined

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.retryable = ERROR_CODES[code].retryable
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

/**
 * UNAVAILABLE_MESSAGES are what a device is told when a store fails: stable (docs/protocol.md), never the
 * driver's own text (addresses, SQL, internals), which goes to the bridge's log as the error's cause.
 */
export const UNAVAILABLE_MESSAGES = {
  state: 'the shared state is unavailable; retry later',
  registry: 'the registry is unavailable; retry later',
} as const

/**
 * StateUnavailableError is a store operation that failed (Redis or PostgreSQL unreachable); the device is told
 * ISSUER_UNAVAILABLE (retryable) with the store's stable message: nothing was issued, retry later.
 */
export class StateUnavailableError extends RegistrationError {
  constructor(store: keyof typeof UNAVAILABLE_MESSAGES, options: { cause?: unknown } = {}) {
    super('ISSUER_UNAVAILABLE', UNAVAILABLE_MESSAGES[store], options)
  }
}

/** toRegistrationError keeps typed errors as they are and turns anything else into INTERNAL_ERROR. */
export function toRegistrationError(err: unknown): RegistrationError {
  if (err instanceof RegistrationError) return err
  return new RegistrationError('INTERNAL_ERROR', 'internal error', { cause: err })
}
