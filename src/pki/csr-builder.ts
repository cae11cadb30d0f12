import type { KeyObject } from 'node:crypto'
import { type CertificateProfile, encodeName, extension, generalNames, signed } from './certificate.js'
import { oid, sequence, set, tlv, unsignedInteger } from './der.js'
import { signatureSchemeFor, spkiDer } from './keys.js'
import { toPem } from './pem.js'

function extensionRequest(names: Pick<CertificateProfile, 'dnsNames' | 'uris'>): Buffer {
  const san = generalNames(names)
  if (!san) return tlv(0xa0, Buffer.alloc(0))
  // attributes [0] { extensionRequest (PKCS#9) { Extensions } }
  return tlv(0xa0, sequence(oid('1.2.840.113549.1.9.14'), set(sequence(extension('2.5.29.17', san)))))
}

/** buildCsr makes a PKCS#10 request (RFC 2986) with subject CN and optional SANs, signed by the key. */
export function buildCsr(
  commonName: string,
  privateKey: KeyObject,
  publicKey: KeyObject,
  names: Pick<CertificateProfile, 'dnsNames' | 'uris'> = {},
): string {
  const info = sequence(
    unsignedInteger(0),
    encodeName(commonName),
    spkiDer(publicKey),
    extensionRequest(names),
  )
  return toPem(signed(info, privateKey, signatureSchemeFor(privateKey)), 'CERTIFICATE REQUEST')
}
