import { createPrivateKey, X509Certificate } from 'node:crypto'
import type { CertificateProfile, Signer } from './certificate.js'
import { encodeName } from './certificate.js'
import { oid } from './der.js'
import { children, readElement, slice } from './der-reader.js'
import { type KeyPair, keyIdentifier, signatureSchemeFor, spkiDer } from './keys.js'
import { certificatesFromPem } from './pem.js'

const SKI_OID = oid('2.5.29.14')

/** LoadedCa is a CA certificate with its signing key, ready to issue. */
export interface LoadedCa {
  readonly signer: Signer
  readonly certificate: X509Certificate
  readonly certificatePem: string
}

/** IssuingCaMaterial is the embedded CA, loaded, with the intermediates it appends to each certificate. */
export interface IssuingCaMaterial {
  readonly ca: LoadedCa
  readonly chainPem: string
}

/** subjectKeyIdentifierOf reads a certificate's SKI extension, or computes method 1 when it has none. */
function subjectKeyIdentifierOf(der: Buffer, subjectIndex: number): Buffer {
  const tbs = children(der, readElement(der))[0]
  if (!tbs) throw new RangeError('certificate without TBSCertificate')
  const fields = children(der, tbs)
  const spki = fields[subjectIndex + 1]
  if (!spki) throw new RangeError('certificate without SubjectPublicKeyInfo')
  const extWrapper = fields.find((f) => f.tag === 0xa3)
  if (extWrapper) {
    const list = children(der, extWrapper)[0]
    for (const ext of list ? children(der, list) : []) {
      const [id, ...rest] = children(der, ext)
      const value = rest[rest.length - 1]
      if (id && value && slice(der, id).equals(SKI_OID)) {
        const inner = readElement(der, value.contentStart)
        return Buffer.from(der.subarray(inner.contentStart, inner.end))
      }
    }
  }
  return keyIdentifier(Buffer.from(slice(der, spki)))
}

/** loadCa reads a CA certificate and its private key (PEM), and checks that they belong together. */
export function loadCa(certificatePem: string, keyPem: string): LoadedCa {
  const der = certificatesFromPem(certificatePem)[0]
  if (!der) throw new Error('no CERTIFICATE block found')
  const certificate = new X509Certificate(der)
  const key = createPrivateKey(keyPem)
  if (!certificate.checkPrivateKey(key)) throw new Error('the private key does not match the certificate')
  if (!certificate.ca)
    throw new Error('the certificate is not a CA certificate (basicConstraints cA is not set)')
  const tbs = children(der, readElement(der))[0]
  if (!tbs) throw new Error('certificate without TBSCertificate')
  const fields = children(der, tbs)
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ...
  const subjectIndex = fields[0]?.tag === 0xa0 ? 5 : 4
  const subject = fields[subjectIndex]
  if (!subject) throw new Error('certificate without subject')
  return {
    signer: {
      subject: Buffer.from(slice(der, subject)),
      keyIdentifier: subjectKeyIdentifierOf(der, subjectIndex),
      key,
      scheme: signatureSchemeFor(key),
    },
    certificate,
    certificatePem: certificate.toString(),
  }
}

/** selfSigner is the signer of a self-signed certificate: it names and identifies itself. */
export function selfSigner(profile: CertificateProfile, keys: KeyPair): Signer {
  return {
    subject: encodeName(profile.commonName, profile.organization),
    keyIdentifier: keyIdentifier(spkiDer(keys.publicKey)),
    key: keys.privateKey,
    scheme: signatureSchemeFor(keys.privateKey),
  }
}
