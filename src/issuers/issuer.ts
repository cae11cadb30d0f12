import type { ParsedCsr } from '../pki/csr.js'
import type { KeyAlgorithm } from '../protocol/messages.js'
import type { Narrowing } from './template.js'

/** VerifiedCsr is a device CSR whose signature, key and subject the policy has checked. */
export type VerifiedCsr = Pick<ParsedCsr, 'der' | 'publicKey' | 'spki'> &
  Partial<Pick<ParsedCsr, 'subjectAltNames'>>

/** IssuanceOrder is what the policy allows: one identity, and either the device's CSR or a key to generate. */
export interface IssuanceOrder {
  readonly identity: string
  readonly keyAlgorithm: KeyAlgorithm
  /** Present in CSR mode; absent when the issuer must generate the key. */
  readonly csr?: VerifiedCsr
  /** The gateway that registers this downstream device (for the template's gatewayUris). */
  readonly registeredBy?: string
  /** What the registration hook took away from the template (fewer names, a shorter validity). */
  readonly narrowing?: Narrowing | undefined
}

/** Credentials are what an issuer returns; the registration service turns them into a reply. */
export interface Credentials {
  /** PEM: the device certificate first, then any intermediates. */
  readonly certificatePem: string
  /** PEM: the issuer's CA certificates the device should trust. */
  readonly caCertificatesPem: string
  /** PEM PKCS#8, only when the issuer generated the key. Never logged or stored by the bridge. */
  readonly privateKeyPem?: string
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
}

/**
 * Issuer turns an order into credentials. It throws RegistrationError with ISSUANCE_FAILED (terminal),
 * ISSUER_UNAVAILABLE (retryable) or stops when `signal` aborts; anything else becomes INTERNAL_ERROR.
 */
export interface Issuer {
  readonly name: string
  /** start prepares the issuer (e.g. syncs informers); the bridge listens meanwhile and reports not ready. */
  start(): Promise<void>
  /** isReady tells the readiness probe whether the issuer can issue now (false while its CA has expired). */
  isReady(): boolean
  issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials>
  close(): Promise<void>
}
