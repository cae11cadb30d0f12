import { createPrivateKey, X509Certificate } from 'node:crypto'

const unb64 = (text: string | undefined): string => Buffer.from(text ?? '', 'base64').toString('utf8')

/**
 * adoptable is cert-manager's test for an existing Secret: it holds a key pair whose certificate has the
 * Certificate's commonName and key algorithm/size and has not expired. cert-manager then issues nothing and
 * marks the Certificate Ready from that certificate, without status.revision. Returns its validity, or
 * undefined when cert-manager would issue.
 */
export function adoptable(
  spec: { commonName?: string; privateKey?: { algorithm?: string; size?: number } },
  data: Record<string, string> | undefined,
): { notBefore: Date; notAfter: Date } | undefined {
  if (!data?.['tls.crt'] || !data['tls.key']) return undefined
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(unb64(data['tls.crt']))
    if (!leaf.checkPrivateKey(createPrivateKey(unb64(data['tls.key'])))) return undefined
  } catch {
    return undefined
  }
  const wanted = spec.privateKey ?? {}
  const type = leaf.publicKey.asymmetricKeyType
  const details = leaf.publicKey.asymmetricKeyDetails
  const algorithm = type === 'ec' ? 'ECDSA' : type === 'ed25519' ? 'Ed25519' : 'RSA'
  const size = type === 'ec' ? (details?.namedCurve === 'secp384r1' ? 384 : 256) : details?.modulusLength
  const matches =
    leaf.subject.split('\n').includes(`CN=${spec.commonName}`) &&
    algorithm === (wanted.algorithm ?? 'RSA') &&
    (algorithm === 'Ed25519' || size === (wanted.size ?? (algorithm === 'RSA' ? 2048 : 256))) &&
    new Date(leaf.validTo).getTime() > Date.now()
  return matches ? { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) } : undefined
}
