import type { Credentials } from '../issuers/issuer.js'
import { certificatesFromPem, toPem } from '../pki/pem.js'
import type { IssuedReply } from '../protocol/messages.js'

/** mergeTrustBundles joins PEM bundles, keeping each certificate once and in first-seen order. */
export function mergeTrustBundles(...bundles: string[]): string {
  const seen = new Set<string>()
  let out = ''
  for (const der of bundles.flatMap(certificatesFromPem)) {
    const key = der.toString('base64')
    if (seen.has(key)) continue
    seen.add(key)
    out += toPem(der, 'CERTIFICATE')
  }
  return out
}

/** IssuedReplyContext is what the reply adds to the credentials: trust anchors and where to connect. */
export interface IssuedReplyContext {
  readonly requestId: string | undefined
  /** PEM appended to the issuer's CA certificates, e.g. the production broker's server CA. */
  readonly extraTrustPem: string
  readonly productionUrl: string | undefined
}

/** issuedReply builds the wire reply for issued credentials. */
export function issuedReply(credentials: Credentials, context: IssuedReplyContext): IssuedReply {
  return {
    status: 'issued',
    ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
    certificate: credentials.certificatePem,
    caCertificates: mergeTrustBundles(credentials.caCertificatesPem, context.extraTrustPem),
    ...(credentials.privateKeyPem === undefined ? {} : { privateKey: credentials.privateKeyPem }),
    serialNumber: credentials.serialNumber,
    notBefore: credentials.notBefore.toISOString(),
    notAfter: credentials.notAfter.toISOString(),
    ...(context.productionUrl === undefined ? {} : { endpoint: { url: context.productionUrl } }),
  }
}
