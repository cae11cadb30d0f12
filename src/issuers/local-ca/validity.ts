import { X509Certificate } from 'node:crypto'
import { certificatesFromPem } from '../../pki/pem.js'

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
