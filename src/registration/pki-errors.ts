import { PkiError, type PkiReason } from '../pki/errors.js'
import { type ErrorCode, RegistrationError } from '../protocol/errors.js'

/** PKI_WIRE_CODES maps each refusal of the PKI layer to the wire code a device receives: the one place it is done. */
export const PKI_WIRE_CODES: Record<PkiReason, ErrorCode> = {
  MALFORMED: 'CSR_UNREADABLE',
  TOO_LARGE: 'CSR_UNREADABLE',
  SIGNATURE_INVALID: 'CSR_SIGNATURE_INVALID',
  SIGNATURE_ALGORITHM_MISMATCH: 'CSR_SIGNATURE_INVALID',
  SIGNATURE_ALGORITHM_UNSUPPORTED: 'KEY_NOT_ALLOWED',
  KEY_UNSUPPORTED: 'KEY_NOT_ALLOWED',
  KEY_INVALID: 'KEY_NOT_ALLOWED',
}

/** withWireCodes runs a PKI call and rethrows its refusals with their wire codes; other errors pass through. */
export function withWireCodes<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof PkiError)) throw err
    throw new RegistrationError(PKI_WIRE_CODES[err.reason], err.message, { cause: err })
  }
}
