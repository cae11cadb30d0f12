import { createPrivateKey, X509Certificate } from 'node:crypto'
import { type CertificateProfile, encodeName, type Signer } from './certificate.js'
import { oidHex } from './der.js'
import { content, readElement, slice } from './der-reader.js'
import { type KeyPair, keyIdentifier, signatureSchemeFor, spkiDer } from './keys.js'
import { certificateParts } from './names.js'
import { certificatesFromPem } from './pem.js'

const SKI = oidHex('2.5.29.14')

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

/** loadCa reads a CA certificate and its private key (PEM), and checks that they belong together. */
export function loadCa(certificatePem: string, keyPem: string): LoadedCa {
  const der = certificatesFromPem(certificatePem)[0]
  if (!der) throw new Error('no CERTIFICATE block found')
  const certificate = new X509Certificate(der)
  const key = createPrivateKey(keyPem)
  if (!certificate.checkPrivateKey(key)) throw new Error('the private key does not match the certificate')
  if (!certificate.ca)
    throw new Error('the certificate is not a CA certificate (basicConstraints cA is not set)')
  const { subject, spki, extensions } = certificateParts(der)
  const ski = extensions.find((e) => e.id === SKI)?.value
  return {
    signer: {
      subject: Buffer.from(slice(der, subject)),
      // the CA's own subjectKeyIdentifier, else method 1 (RFC 5280 4.2.1.2)
      keyIdentifier: ski
        ? Buffer.from(content(ski, readElement(ski)))
        : keyIdentifier(Buffer.from(slice(der, spki))),
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
