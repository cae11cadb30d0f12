import { createHash } from 'node:crypto'
import type { KeyAlgorithm, RegistrationRequest } from '../protocol/messages.js'

/**
 * RequestScope is what, besides the identity and the request, makes two requests the same registration: the
 * gateway asking for a downstream device, or the certificate a renewal is made with.
 */
export type RequestScope =
  | { readonly registeredBy: string }
  | { readonly renewing: string }
  | { readonly aws: true }
  | Record<string, never>

/**
 * canonicalCsr reduces a CSR to its base64 DER, so that the PEM and the bare base64 forms of one CSR (and any
 * line breaks) are one request.
 */
function canonicalCsr(csr: string): string {
  return csr.replace(/-----[A-Z0-9 ]+-----/g, '').replace(/\s+/g, '')
}

/**
 * idempotencyKey is the request hash: the same identity sending the same requestId and content after defaults
 * (`{"requestId":"r"}` is `{"requestId":"r","keyAlgorithm":<the default>}`), through the same gateway or renewing
 * the same certificate, or by the same AWS create call, is the same registration, and nothing else is.
 */
export function idempotencyKey(
  identity: string,
  request: RegistrationRequest,
  defaultKeyAlgorithm: KeyAlgorithm,
  scope: RequestScope = {},
): string {
  const content =
    request.csr === undefined
      ? { keyAlgorithm: request.keyAlgorithm ?? defaultKeyAlgorithm }
      : { csr: canonicalCsr(request.csr) }
  const canonical = [
    identity,
    request.requestId ?? null,
    content,
    'registeredBy' in scope ? { registeredBy: scope.registeredBy } : null,
    'renewing' in scope ? { renewing: scope.renewing } : null,
    // an AWS create call is never the same request as a v1 one (its certificate is pending until RegisterThing)
    ...('aws' in scope ? [{ aws: true }] : []),
  ]
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex')
}
