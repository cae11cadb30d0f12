import { createHash, type KeyObject, sign } from 'node:crypto'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import * as x509 from '@peculiar/asn1-x509'
import type { CertificateProfile } from '../../src/pki/certificate.js'
import { randomSerial } from '../../src/pki/certificate.js'

/** GenericSigner is the CA as the generic builder needs it: its Name parsed once, its key id and key. */
export interface GenericSigner {
  readonly issuer: x509.Name
  readonly keyIdentifier: Buffer
  readonly key: KeyObject
}

/** genericSigner parses the CA's subject once, as any long-lived generic issuer would. */
export const genericSigner = (subjectDer: Buffer, keyIdentifier: Buffer, key: KeyObject): GenericSigner => ({
  issuer: AsnConvert.parse(subjectDer, x509.Name),
  keyIdentifier,
  key,
})

const ext = (extnID: string, critical: boolean, value: unknown): x509.Extension =>
  new x509.Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })

/**
 * genericBuild builds and signs the same certificate as the bridge's fast builder (same fields, same
 * extensions, ECDSA P-256 CA with SHA-256), through the @peculiar/asn1-x509 object model and its DER
 * serializer, signing with the same synchronous node:crypto call: only the builder differs.
 */
export function genericBuild(profile: CertificateProfile, spki: Buffer, signer: GenericSigner): Buffer {
  const subjectPublicKeyInfo = AsnConvert.parse(spki, x509.SubjectPublicKeyInfo)
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' })
  const cn = new x509.AttributeTypeAndValue({
    type: '2.5.4.3',
    value: new x509.AttributeValue({ utf8String: profile.commonName }),
  })
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: new Uint8Array(randomSerial()).buffer,
    signature: algorithm,
    issuer: signer.issuer,
    validity: new x509.Validity({ notBefore: profile.notBefore, notAfter: profile.notAfter }),
    subject: new x509.Name([new x509.RelativeDistinguishedName([cn])]),
    subjectPublicKeyInfo,
    extensions: new x509.Extensions([
      ext(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({})),
      ext(x509.id_ce_keyUsage, true, new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature)),
      ext(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage(['1.3.6.1.5.5.7.3.2'])),
      ext(
        x509.id_ce_subjectAltName,
        false,
        new x509.SubjectAlternativeName(
          (profile.dnsNames ?? []).map((dNSName) => new x509.GeneralName({ dNSName })),
        ),
      ),
      ext(
        x509.id_ce_subjectKeyIdentifier,
        false,
        new x509.SubjectKeyIdentifier(
          createHash('sha1').update(Buffer.from(subjectPublicKeyInfo.subjectPublicKey)).digest(),
        ),
      ),
      ext(
        x509.id_ce_authorityKeyIdentifier,
        false,
        new x509.AuthorityKeyIdentifier({ keyIdentifier: new x509.KeyIdentifier(signer.keyIdentifier) }),
      ),
    ]),
  })
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs))
  const signatureValue = sign('sha256', tbsDer, signer.key)
  const certificate = new x509.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signatureValue).buffer,
  })
  return Buffer.from(AsnConvert.serialize(certificate))
}
