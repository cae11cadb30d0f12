import { type KeyObject, sign } from 'node:crypto'
import { encodeName } from './certificate.js'
import { bitString, octetString, oid, sequence, set, smallInteger, tlv } from './der.js'
import { signatureSchemeFor, spkiDer } from './keys.js'
import { toPem } from './pem.js'

/** SubjectAltNames a CSR may ask for. */
export interface RequestedNames {
  readonly dnsNames?: readonly string[]
  readonly uris?: readonly string[]
}

function extensionRequest(names: RequestedNames): Buffer {
  const general = [
    ...(names.dnsNames ?? []).map((n) => tlv(0x82, Buffer.from(n, 'ascii'))),
    ...(names.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
  ]
  if (general.length === 0) return tlv(0xa0, Buffer.alloc(0))
  const san = sequence(oid('2.5.29.17'), octetString(sequence(...general)))
  // attributes [0] { extensionRequest (PKCS#9) { Extensions } }
  return tlv(0xa0, sequence(oid('1.2.840.113549.1.9.14'), set(sequence(san))))
}

/** buildCsr makes a PKCS#10 request (RFC 2986) with subject CN and optional SANs, signed by the key. */
export function buildCsr(
  commonName: string,
  privateKey: KeyObject,
  publicKey: KeyObject,
  names: RequestedNames = {},
): string {
  const info = sequence(smallInteger(0), encodeName(commonName), spkiDer(publicKey), extensionRequest(names))
  const scheme = signatureSchemeFor(privateKey)
  const signature = sign(scheme.digest, info, privateKey)
  return toPem(sequence(info, scheme.algorithmIdentifier, bitString(signature)), 'CERTIFICATE REQUEST')
}
