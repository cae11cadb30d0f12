import { X509Certificate } from 'node:crypto'
import { RegistrationError } from '../../protocol/errors.js'
import type { Credentials, IssuanceOrder, VerifiedCsr } from '../issuer.js'
import { ensureObject } from './ensure.js'
import type { FlowContext } from './flow-context.js'
import { certificateRequestName } from './names.js'
import {
  type CertificateRequest,
  certificateRequestFor,
  conditionOf,
  decodeBase64,
  issuedCredentials,
  refused,
} from './resources.js'

/** outcome maps a CertificateRequest's conditions to an answer; each terminal reason to a documented code. */
function outcome(request: CertificateRequest | undefined): CertificateRequest | undefined {
  if (!request) return undefined
  const denied = conditionOf(request, 'Denied')
  if (denied?.status === 'True')
    throw refused('the certificate request was denied', denied.message ?? 'Denied')
  const invalid = conditionOf(request, 'InvalidRequest')
  if (invalid?.status === 'True')
    throw refused('the issuer found the certificate request invalid', invalid.message ?? 'InvalidRequest')
  const ready = conditionOf(request, 'Ready')
  if (ready?.status === 'False' && (ready.reason === 'Failed' || ready.reason === 'Denied'))
    throw refused(`the issuer did not issue the certificate (${ready.reason})`, ready.message ?? ready.reason)
  return ready?.status === 'True' && request.status?.certificate ? request : undefined
}

/** credentialsFrom checks that the issued certificate certifies the device's own key before handing it over. */
function credentialsFrom(request: CertificateRequest, csr: VerifiedCsr): Credentials {
  const chain = decodeBase64(request.status?.certificate)
  const leaf = new X509Certificate(chain)
  const issuedKey = leaf.publicKey.export({ format: 'der', type: 'spki' })
  if (!issuedKey.equals(csr.spki)) {
    throw new RegistrationError('ISSUANCE_FAILED', 'the issuer returned a certificate for another key')
  }
  return issuedCredentials(leaf, chain, decodeBase64(request.status?.ca))
}

/**
 * issueWithRequest is CSR mode: create a CertificateRequest with the device's CSR, wait for Ready/Issued (or
 * Denied/Failed), verify the certificate is for the device's key, and (by default) delete the request.
 */
export async function issueWithRequest(
  ctx: FlowContext,
  order: IssuanceOrder & { csr: VerifiedCsr },
  signal: AbortSignal,
): Promise<Credentials> {
  const { watchers, options } = ctx
  const name = certificateRequestName(order.identity, order.csr.der)
  const body = certificateRequestFor(name, order, options) as never
  ctx.inFlight.add(name)
  try {
    await ensureObject(ctx, 'certificaterequests', watchers.requests as never, body, signal)
    let request: CertificateRequest
    try {
      request = await watchers.requests.waitFor(name, outcome, signal)
    } catch (err) {
      // a timeout keeps the request, so that a retry resumes it; a terminal failure does not need it any more
      if (err instanceof RegistrationError && !err.retryable) scheduleDelete(ctx, name)
      throw err
    }
    scheduleDelete(ctx, name)
    return credentialsFrom(request, order.csr)
  } finally {
    ctx.inFlight.delete(name)
  }
}

function scheduleDelete(ctx: FlowContext, name: string): void {
  if (ctx.options.requestRetention !== 'delete') return
  ctx.cleanup((signal) => ctx.api.delete('certificaterequests', name, signal))
}
