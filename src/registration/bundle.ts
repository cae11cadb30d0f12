import { X509Certificate } from 'node:crypto'
import { certificatesFromPem } from '../pki/pem.js'
import { buildPkcs12 } from '../pki/pkcs12.js'
import type { IssuedReply, RegistrationRequest } from '../protocol/messages.js'

/**
 * answerAs shapes an issued reply the way its request asked: with `pkcs12`, the generated key travels in a
 * PKCS#12 bundle (key, certificate, chain) protected by the request's password, in place of `privateKey`. It is
 * a property of the answer, not of the issuance: the pipeline (and its reply cache) keeps the PEM key, and each
 * answer — a replay too — is wrapped with the password of the request it answers, which is never kept.
 */
export async function answerAs(
  reply: IssuedReply,
  request: RegistrationRequest,
  identity: string,
): Promise<IssuedReply> {
  if (request.pkcs12 === undefined) return reply
  const { privateKey, ...rest } = reply
  if (privateKey === undefined) throw new Error('a PKCS#12 bundle was asked for an answer without a key')
  const bundle = await buildPkcs12(
    {
      privateKeyPem: privateKey,
      certificates: chainOf(reply.certificate, reply.caCertificates),
      friendlyName: identity,
    },
    request.pkcs12.password.reveal(),
  )
  return { ...rest, pkcs12: bundle.toString('base64') }
}

/** holdsKey says whether a reply carries a private key, as PEM or in a bundle. */
export const holdsKey = (reply: IssuedReply): boolean =>
  reply.privateKey !== undefined || reply.pkcs12 !== undefined

/**
 * chainOf is what the bundle holds beside the key: the certificate and its intermediates (the reply's
 * `certificate`), then the CA certificates of `caCertificates` that issued them, up to a self-signed one. Other
 * trust anchors the reply names (the production broker's CA) stay out: they are not the device's chain.
 */
function chainOf(certificatePem: string, caCertificatesPem: string): Buffer[] {
  const chain = certificatesFromPem(certificatePem)
  const cas = certificatesFromPem(caCertificatesPem).map((der) => ({ der, cert: new X509Certificate(der) }))
  let last = new X509Certificate(chain.at(-1) as Buffer)
  while (!last.checkIssued(last) || !last.verify(last.publicKey)) {
    const issuer = cas.find(
      (ca) => last.checkIssued(ca.cert) && last.verify(ca.cert.publicKey) && !chain.includes(ca.der),
    )
    if (!issuer) break
    chain.push(issuer.der)
    last = issuer.cert
  }
  return chain
}
