import { X509Certificate } from 'node:crypto'
import { certificatesFromPem } from './pem.js'

/** ChainValidity is the window in which every certificate of the issuing chain is valid. */
export interface ChainValidity {
  readonly notBefore: Date
  readonly notAfter: Date
}

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
 * chainProblem checks a certificate chain returned by an external issuer (e.g. cert-manager: the leaf first,
 * then intermediates, then the CA certificates): it says why the leaf outlives a certificate above it, or
 * undefined when it does not. An external issuer's certificate cannot be capped, only refused.
 */
export function chainProblem(chainPem: string): string | undefined {
  const [leaf, ...above] = certificatesFromPem(chainPem).map((der) => new X509Certificate(der))
  if (!leaf) return 'no certificate in the chain'
  const leafEnd = new Date(leaf.validTo).getTime()
  const first = above.find((c) => new Date(c.validTo).getTime() < leafEnd)
  return first
    ? `the certificate outlives ${first.subject} (notAfter ${new Date(first.validTo).toISOString()})`
    : undefined
}
