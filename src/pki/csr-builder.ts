import { type KeyObject, sign } from 'node:crypto'
import { encodeName } from './certificate.js'
import { bitString, sequence, smallInteger, tlv } from './der.js'
import { signatureSchemeFor, spkiDer } from './keys.js'
import { toPem } from './pem.js'

/** buildCsr makes a PKCS#10 request (RFC 2986) with subject CN and no attributes, signed by the key. */
export function buildCsr(commonName: string, privateKey: KeyObject, publicKey: KeyObject): string {
  const info = sequence(
    smallInteger(0),
    encodeName(commonName),
    spkiDer(publicKey),
    tlv(0xa0, Buffer.alloc(0)),
  )
  const scheme = signatureSchemeFor(privateKey)
  const signature = sign(scheme.digest, info, privateKey)
  return toPem(sequence(info, scheme.algorithmIdentifier, bitString(signature)), 'CERTIFICATE REQUEST')
}
