import { X509Certificate } from 'node:crypto'
import type { CertificateProfile } from './certificate.js'
import { certificatesFromPem } from './pem.js'

/** ChainValidity is the window in which every certificate of the issuing chain is valid. */
export type ChainValidity = Pick<CertificateProfile, 'notBefore' | 'notAfter'>

/** chainValidity intersects the validity of the CA certificate and any intermediates (PEM). */
export function chainValidity(caCertificate: X509Certificate, chainPem: string): ChainValidity {
  const certificates = [
    caCertificate,
    ...certificatesFromPem(chainPem).map((der) => new X509Certificate(der)),
  ]
  const from = certificates.map((c) => new Date(c.validFrom).getTime())
  const to = certificates.map((c) => new Date(c.validTo).getTime())
  return { notBefore: new Date(Math.max(...from)), notAfter: new Date(Math.min(...to)) }
}

/** validityProblem says why the chain cannot issue at `now` (expired, not yet valid), or undefined. */
export function validityProblem(chain: ChainValidity, now: number): string | undefined {
  if (now > chain.notAfter.getTime()) return `the issuing CA expired at ${chain.notAfter.toISOString()}`
  if (now < chain.notBefore.getTime())
    return `the issuing CA is not valid before ${chain.notBefore.toISOString()}`
  return undefined
}

/**
 * usableUntil is when a certificate returned by an external issuer (e.g. cert-manager: the leaf first, then
 * intermediates; `caPem` the CA certificates) stops being usable: its own notAfter, or earlier the notAfter of a
 * certificate above it. An external issuer's certificate cannot be capped, so the reply says this date instead.
 */
export function usableUntil(chainPem: string, caPem = ''): Date {
  const ends = [...certificatesFromPem(chainPem), ...certificatesFromPem(caPem)].map((der) =>
    new Date(new X509Certificate(der).validTo).getTime(),
  )
  if (ends.length === 0) throw new RangeError('no certificate in the chain')
  return new Date(Math.min(...ends))
}
