import { createPrivateKey, X509Certificate } from 'node:crypto'
import { keyAlgorithmOf } from '../../pki/keys.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { Credentials, IssuanceOrder } from '../issuer.js'
import { expandTemplate } from '../template.js'
import { ensureObject } from './ensure.js'
import type { FlowContext } from './flow-context.js'
import { resourceName, secretName } from './names.js'
import {
  type Certificate,
  certificateFor,
  conditionOf,
  decodeBase64,
  issuedCredentials,
  refused,
  type Secret,
} from './resources.js'

/**
 * ISSUED is the reason of `Issuing=False` after a successful issuance: cert-manager's issuing controller sets it
 * (instead of removing the condition) when its ServerSideApply feature gate is on. Not a failure.
 */
const ISSUED = 'Issued'

/**
 * readyCertificate is the Certificate once cert-manager says it is Ready for its current spec. Issuing=False
 * with a failure reason is final for this revision (cert-manager copies the CertificateRequest's reason there —
 * Denied, Failed, InvalidRequest, an approver's or issuer's own — and backs off for an hour or more), so it
 * throws ISSUANCE_FAILED naming the reason; Issuing=False with reason Issued is a success, decided by Ready.
 */
function readyCertificate(certificate: Certificate | undefined): Certificate | undefined {
  if (!certificate) return undefined
  const issuing = conditionOf(certificate, 'Issuing')
  if (issuing?.status === 'False' && issuing.reason !== ISSUED) {
    const reason = issuing.reason ?? 'Failed'
    throw refused(`the issuer did not issue the certificate (${reason})`, issuing.message ?? reason)
  }
  const ready = conditionOf(certificate, 'Ready')
  const generation = certificate.metadata?.generation
  const current = ready?.observedGeneration === undefined || ready.observedGeneration === generation
  return ready?.status === 'True' && current ? certificate : undefined
}

/**
 * provenFor: a certificate cert-manager did not issue for this Certificate (Ready without status.revision: it
 * adopted an existing Secret) is used only when it has this registration's key algorithm and identity and was
 * issued no earlier than the Certificate object was created.
 */
function provenFor(leaf: X509Certificate, certificate: Certificate, order: IssuanceOrder): boolean {
  const created = Date.parse(certificate.metadata?.creationTimestamp as unknown as string)
  return (
    keyAlgorithmOf(leaf.publicKey) === order.keyAlgorithm &&
    leaf.subject.split('\n').includes(`CN=${order.identity}`) &&
    new Date(leaf.validFrom).getTime() >= created
  )
}

/** credentialsOf reads the Secret once it holds the key pair of the Certificate's current certificate. */
function credentialsOf(certificate: Certificate, secret: Secret | undefined) {
  const data = secret?.data
  if (!data?.['tls.crt'] || !data['tls.key']) return undefined
  const chain = decodeBase64(data['tls.crt'])
  const leaf = new X509Certificate(chain)
  // cert-manager writes the Secret after it marks the Certificate Ready: wait for this revision's certificate
  const notAfter = certificate.status?.notAfter
  if (notAfter && new Date(leaf.validTo).getTime() !== new Date(notAfter).getTime()) return undefined
  const privateKeyPem = decodeBase64(data['tls.key'])
  if (!leaf.checkPrivateKey(createPrivateKey(privateKeyPem))) return undefined
  return { leaf, credentials: issuedCredentials(leaf, chain, decodeBase64(data['ca.crt']), privateKeyPem) }
}

/**
 * issueWithCertificate is server-side key mode: ensure a Certificate with this registration's spec, wait until
 * cert-manager has issued it and written its Secret, read the key pair, and (by default) delete both so no
 * private key stays in the cluster. A Secret cert-manager adopted instead of issuing is deleted (forcing a
 * new issuance) unless it provably belongs to this registration.
 */
export async function issueWithCertificate(
  ctx: FlowContext,
  order: IssuanceOrder,
  signal: AbortSignal,
): Promise<Credentials> {
  const { api, watchers, options } = ctx
  const name = resourceName(order.identity)
  const template = expandTemplate(options.template, order.identity, order.registeredBy, order.narrowing)
  const body = certificateFor(template, order.keyAlgorithm, options.issuerRef, options.namespace) as never
  const secret = secretName(order.identity)
  const deleteSecret = (s: AbortSignal) => api.delete('secrets', secret, s)
  const remove = (): void =>
    ctx.cleanup(async (cleanupSignal) => {
      // a failed Certificate delete must not skip the Secret's: the key matters more
      await api.delete('certificates', name, cleanupSignal).finally(() => deleteSecret(cleanupSignal))
    })
  ctx.inFlight.add(name)
  try {
    await ensureObject(ctx, 'certificates', watchers.certificates as never, body, signal, deleteSecret)
    let reissuing = false
    const evaluate = (): Credentials | undefined => {
      const certificate = readyCertificate(watchers.certificates.get(name))
      if (!certificate) return undefined
      const found = credentialsOf(certificate, watchers.secrets.get(secret))
      if (!found) return undefined
      if (certificate.status?.revision || provenFor(found.leaf, certificate, order)) return found.credentials
      if (!reissuing) {
        reissuing = true
        deleteSecret(signal)
          .catch(() => undefined)
          .finally(() => {
            reissuing = false
          })
      }
      return undefined
    }
    let credentials: Credentials
    try {
      const stop = new AbortController()
      const both = AbortSignal.any([signal, stop.signal])
      // either object's change may complete the answer; the waiters reject when `signal` aborts
      credentials = await Promise.race([
        watchers.certificates.waitFor(name, evaluate, both),
        watchers.secrets.waitFor(secret, evaluate, both),
      ]).finally(() => stop.abort())
    } catch (err) {
      // a timeout keeps the Certificate, so that a retry resumes it; after a terminal failure a retry starts afresh
      if (err instanceof RegistrationError && !err.retryable) remove()
      throw err
    }
    if (options.secretRetention === 'delete') remove()
    return credentials
  } finally {
    ctx.inFlight.delete(name)
  }
}
