/**
 * Errors of the PKI layer. pki/ knows nothing of the wire protocol: it says what is wrong with a CSR, a key
 * or a certificate in its own terms, and the registration layer maps each reason to a wire code
 * (src/registration/pki-errors.ts).
 */

/** PKI_REASONS lists why the PKI layer refuses an input. */
export const PKI_REASONS = [
  /** The input is not strict DER of the expected structure (or not PEM/base64 of it). */
  'MALFORMED',
  /** The input is larger than the PKI layer reads. */
  'TOO_LARGE',
  /** The self-signature does not verify. */
  'SIGNATURE_INVALID',
  /** The signature algorithm does not fit the key, or its parameters are not the ones its RFC allows. */
  'SIGNATURE_ALGORITHM_MISMATCH',
  /** The signature algorithm is not one the bridge accepts. */
  'SIGNATURE_ALGORITHM_UNSUPPORTED',
  /** The key type, curve or size is not one the bridge certifies. */
  'KEY_UNSUPPORTED',
  /** The key is of a supported type but unfit to certify (off the curve, small order, weak exponent, …). */
  'KEY_INVALID',
] as const

export type PkiReason = (typeof PKI_REASONS)[number]

/** PkiError is a refusal of the PKI layer, with its reason. */
export class PkiError extends Error {
  override readonly name = 'PkiError'
  readonly reason: PkiReason

  constructor(reason: PkiReason, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.reason = reason
  }
}

/** malformed is a MALFORMED PkiError: the one way DER readers report bad input. */
export const malformed = (message: string): PkiError => new PkiError('MALFORMED', message)
