import { createHash } from 'node:crypto'
import type { Credentials } from '../issuers/issuer.js'
import { certificatesFromPem, toPem } from '../pki/pem.js'
import type { IssuedReply } from '../protocol/messages.js'
import type { DeviceRecord } from '../registry/registry.js'
import { recordedIssuance } from './lifecycle-policy.js'
import type { Pipeline, Registration } from './pipeline/registration.js'

/** mergeTrustBundles joins PEM bundles, keeping each certificate once and in first-seen order. */
function mergeTrustBundles(...bundles: string[]): string {
  const unique = new Set(bundles.flatMap(certificatesFromPem).map((der) => der.toString('base64')))
  return [...unique].map((b64) => toPem(Buffer.from(b64, 'base64'), 'CERTIFICATE')).join('')
}

/** fingerprintOf is the SHA-256 of a certificate's DER (the first of a PEM chain), hex. */
export function fingerprintOf(certificatePem: string): string {
  const der = certificatesFromPem(certificatePem)[0] ?? Buffer.alloc(0)
  return createHash('sha256').update(der).digest('hex')
}

/**
 * issuedReply builds the wire reply for issued credentials, with the trust anchors (`extraTrustPem`, read now: a
 * re-read production CA file applies at once) and where to connect: the endpoint the registration hook assigned
 * to this issuance (recorded with it), else `productionUrl`.
 */
export function issuedReply(
  credentials: Credentials,
  requestId: string | undefined,
  settings: Pipeline['settings'],
  endpoint: string | undefined = settings.productionUrl,
): IssuedReply {
  return {
    status: 'issued',
    ...(requestId === undefined ? {} : { requestId }),
    certificate: credentials.certificatePem,
    caCertificates: mergeTrustBundles(credentials.caCertificatesPem, settings.extraTrustPem),
    ...(credentials.privateKeyPem === undefined ? {} : { privateKey: credentials.privateKeyPem }),
    serialNumber: credentials.serialNumber,
    notBefore: credentials.notBefore.toISOString(),
    notAfter: credentials.notAfter.toISOString(),
    ...(endpoint === undefined ? {} : { endpoint: { url: endpoint } }),
  }
}

/**
 * recordedAnswer is the answer the registry holds for this very request: the identity's newest certificate carries
 * its request hash, was issued within the retry window, and is still as issued (`state`: active, or pending) — rebuilt from the recorded chain when
 * the device made the key (CSR mode). A server-key answer is not rebuilt: its key was never recorded, and the
 * retry gets a new certificate that supersedes it (the lifecycle step finds it as the retry's earlier issuance).
 */
export function recordedAnswer(
  p: Pipeline,
  device: DeviceRecord | undefined,
  r: Pick<Registration, 'key' | 'request'>,
  state: 'active' | 'pending' = 'active',
): IssuedReply | undefined {
  const newest = recordedIssuance(device, r.key as string, p.retryWindowMs)
  if (newest?.state !== state || newest.keySource !== 'device' || newest.certificatePem === undefined)
    return undefined
  const caCertificatesPem = newest.caCertificatesPem ?? ''
  return issuedReply(
    { ...newest, certificatePem: newest.certificatePem, caCertificatesPem },
    r.request.requestId,
    p.settings,
    newest.endpoint ?? p.settings.productionUrl,
  )
}
