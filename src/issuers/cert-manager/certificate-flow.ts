import { createPrivateKey, X509Certificate } from 'node:crypto'
import { RegistrationError } from '../../protocol/errors.js'
import type { Credentials, IssuanceOrder } from '../issuer.js'
import type { ExpandedTemplate } from '../template.js'
import type { FlowContext } from './flow-context.js'
import { resourceName, secretName } from './names.js'
import { type Certificate, certificateFor, conditionOf, decodeBase64, type Secret } from './resources.js'

/** readyRevision is the Certificate once cert-manager says it is Ready for its current spec; throws on failure. */
function readyRevision(certificate: Certificate | undefined): Certificate | undefined {
  if (!certificate) return undefined
  const issuing = conditionOf(certificate, 'Issuing')
  if (issuing?.status === 'False' && (issuing.reason === 'Failed' || issuing.reason === 'Denied')) {
    throw new RegistrationError(
      'ISSUANCE_FAILED',
      `the issuer did not issue the certificate (${issuing.reason})`,
      {
        cause: new Error(issuing.message ?? issuing.reason),
      },
    )
  }
  const ready = conditionOf(certificate, 'Ready')
  const generation = certificate.metadata?.generation
  const current = ready?.observedGeneration === undefined || ready.observedGeneration === generation
  return ready?.status === 'True' && current && certificate.status?.revision ? certificate : undefined
}

/** secretFor is the Secret once it holds the key pair and CA of the Certificate's current revision. */
function secretFor(certificate: Certificate) {
  return (secret: Secret | undefined): Credentials | undefined => {
    const data = secret?.data
    if (!data?.['tls.crt'] || !data['tls.key']) return undefined
    const chain = decodeBase64(data['tls.crt'])
    const leaf = new X509Certificate(chain)
    // cert-manager writes the Secret after it marks the Certificate Ready: wait for this revision's certificate
    if (
      certificate.status?.notAfter &&
      new Date(leaf.validTo).getTime() !== new Date(certificate.status.notAfter).getTime()
    ) {
      return undefined
    }
    const privateKeyPem = decodeBase64(data['tls.key'])
    if (!leaf.checkPrivateKey(createPrivateKey(privateKeyPem))) return undefined
    return {
      certificatePem: chain,
      caCertificatesPem: decodeBase64(data['ca.crt']),
      privateKeyPem,
      serialNumber: leaf.serialNumber.toLowerCase(),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    }
  }
}

/**
 * issueWithCertificate is server-side key mode: ensure a Certificate, wait until cert-manager has issued it and
 * written its Secret, read the key pair, and (by default) delete both so no private key stays in the cluster.
 */
export async function issueWithCertificate(
  ctx: FlowContext,
  order: IssuanceOrder,
  template: ExpandedTemplate,
  signal: AbortSignal,
): Promise<Credentials> {
  const { api, watchers, options } = ctx
  const name = resourceName(order.identity)
  const body = certificateFor(template, order.keyAlgorithm, options.issuerRef, options.namespace)
  const secret = secretName(order.identity)
  const remove = (): void =>
    ctx.cleanup(async (cleanupSignal) => {
      await api.deleteCustom('certificates', name, cleanupSignal)
      await api.deleteSecret(secret, cleanupSignal)
    })
  await api.create('certificates', body, signal)
  let credentials: Credentials
  try {
    const certificate = await watchers.certificates.waitFor(name, options.namespace, readyRevision, signal)
    credentials = await watchers.secrets.waitFor(secret, options.namespace, secretFor(certificate), signal)
  } catch (err) {
    // a timeout keeps the Certificate, so that a retry resumes it; after a terminal failure a retry starts afresh
    if (err instanceof RegistrationError && !err.retryable) remove()
    throw err
  }
  if (options.secretRetention === 'delete') remove()
  return credentials
}
