import 'reflect-metadata'
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto'
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  cryptoProvider,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
  Pkcs10CertificateRequestGenerator,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509'

cryptoProvider.set(webcrypto as never)
const subtle = webcrypto.subtle
type CryptoKey = webcrypto.CryptoKey

/**
 * The emulated cert-manager's own PKI, independent of the bridge's src/pki: node:crypto makes keys,
 * @peculiar/x509 (on WebCrypto) builds CSRs and certificates, as cert-manager's Go crypto/x509 would.
 */

type Algorithm = { name: string; namedCurve?: string; hash?: string }

function webAlgorithm(pem: string): Algorithm {
  const key = createPrivateKey(pem)
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'
    return { name: 'ECDSA', namedCurve: curve, hash: curve === 'P-384' ? 'SHA-384' : 'SHA-256' }
  }
  if (key.asymmetricKeyType === 'ed25519') return { name: 'Ed25519' }
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
}

async function importPrivate(pem: string): Promise<{ key: CryptoKey; algorithm: Algorithm }> {
  const algorithm = webAlgorithm(pem)
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' })
  const key = await subtle.importKey('pkcs8', der, algorithm as never, false, ['sign'])
  return { key, algorithm }
}

/** generatePrivateKey makes a PKCS#8 PEM key for a Certificate's spec.privateKey. */
export function generatePrivateKey(spec: { algorithm?: string; size?: number } | undefined): string {
  const pem = (k: { privateKey: import('node:crypto').KeyObject }): string =>
    k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  if (spec?.algorithm === 'Ed25519') return pem(generateKeyPairSync('ed25519'))
  if (spec?.algorithm === 'ECDSA')
    return pem(generateKeyPairSync('ec', { namedCurve: spec.size === 384 ? 'P-384' : 'P-256' }))
  return pem(generateKeyPairSync('rsa', { modulusLength: spec?.size ?? 2048 }))
}

/** buildCsr makes the CSR cert-manager's issuing controller makes for a Certificate. */
export async function buildCsr(
  keyPem: string,
  spec: { commonName?: string; dnsNames?: string[]; uris?: string[] },
): Promise<string> {
  const { key, algorithm } = await importPrivate(keyPem)
  const spki = createPublicKey(keyPem).export({ format: 'der', type: 'spki' })
  const pub = await subtle.importKey('spki', spki, algorithm as never, true, ['verify'])
  const names = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ]
  const csr = await Pkcs10CertificateRequestGenerator.create({
    ...(spec.commonName ? { name: `CN=${spec.commonName}` } : {}),
    keys: { privateKey: key, publicKey: pub },
    signingAlgorithm: algorithm as never,
    extensions: names.length ? [new SubjectAlternativeNameExtension(names)] : [],
  })
  return csr.toString('pem')
}

const KU: Record<string, number> = {
  'digital signature': KeyUsageFlags.digitalSignature,
  signing: KeyUsageFlags.digitalSignature,
  'key encipherment': KeyUsageFlags.keyEncipherment,
  'cert sign': KeyUsageFlags.keyCertSign,
}
const EKU: Record<string, string> = { 'client auth': '1.3.6.1.5.5.7.3.2', 'server auth': '1.3.6.1.5.5.7.3.1' }

/** signCsr is the CA issuer: subject and SANs from the CSR, usages and duration from the request. */
export async function signCsr(
  csrPem: string,
  ca: { certificatePem: string; keyPem: string },
  usages: string[],
  durationMs: number,
  isCA: boolean,
  notBefore = new Date(Math.floor(Date.now() / 1000) * 1000),
): Promise<string> {
  const csr = new Pkcs10CertificateRequest(csrPem)
  if (!(await csr.verify())) throw new Error('the CSR signature is invalid')
  const { key, algorithm } = await importPrivate(ca.keyPem)
  const caCert = new X509Certificate(ca.certificatePem)
  const keyUsage = usages.reduce((flags, u) => flags | (KU[u] ?? 0), 0)
  const extended = usages.flatMap((u) => EKU[u] ?? [])
  const san = csr.extensions.find((e) => e instanceof SubjectAlternativeNameExtension)
  const cert = await X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: csr.subject,
    issuer: caCert.subjectName,
    notBefore,
    notAfter: new Date(notBefore.getTime() + durationMs),
    publicKey: csr.publicKey,
    signingKey: key,
    signingAlgorithm: algorithm as never,
    extensions: [
      new BasicConstraintsExtension(isCA, undefined, true),
      ...(keyUsage ? [new KeyUsagesExtension(keyUsage, true)] : []),
      ...(extended.length ? [new ExtendedKeyUsageExtension(extended)] : []),
      ...(san ? [san] : []),
      await AuthorityKeyIdentifierExtension.create(caCert),
      await SubjectKeyIdentifierExtension.create(csr.publicKey),
    ],
  })
  return cert.toString('pem')
}
