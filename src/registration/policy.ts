import type { IssuanceOrder } from '../issuers/issuer.js'
import { type CertificateTemplate, dnsNameProblem, expandTemplate } from '../issuers/template.js'
import { parseCsr } from '../pki/csr.js'
import { describeKey, keyAlgorithmOf } from '../pki/keys.js'
import { RegistrationError } from '../protocol/errors.js'
import type { KeyAlgorithm, RegistrationRequest } from '../protocol/messages.js'
import { withWireCodes } from './pki-errors.js'

/** PolicyOptions say which keys may be certified, which key the bridge makes, and which names a device may hold. */
export interface PolicyOptions {
  readonly allowedKeyAlgorithms: readonly KeyAlgorithm[]
  readonly defaultKeyAlgorithm: KeyAlgorithm
  readonly template: CertificateTemplate
}

function checkAllowed(algorithm: KeyAlgorithm, options: PolicyOptions): void {
  if (!options.allowedKeyAlgorithms.includes(algorithm)) {
    throw new RegistrationError(
      'KEY_NOT_ALLOWED',
      `${algorithm} is not allowed; allowed: ${options.allowedKeyAlgorithms.join(', ')}`,
    )
  }
}

/**
 * authorize decides what an identity may obtain for a request: in CSR mode the CSR must verify, hold an
 * allowed key, ask for no CA powers and name exactly the caller; otherwise the key type must be allowed. Either
 * way the identity must make valid DNS names from the template (dnsNameProblem).
 */
export function authorize(
  identity: string,
  request: RegistrationRequest,
  options: PolicyOptions,
  registeredBy?: string,
): IssuanceOrder {
  const badNames = dnsNameProblem(options.template, identity, registeredBy)
  if (badNames) throw new RegistrationError('NOT_AUTHORIZED', badNames)
  if (request.csr === undefined) {
    const keyAlgorithm = request.keyAlgorithm ?? options.defaultKeyAlgorithm
    checkAllowed(keyAlgorithm, options)
    return { identity, keyAlgorithm }
  }
  const csr = withWireCodes(() => parseCsr(request.csr as string))
  const keyAlgorithm = keyAlgorithmOf(csr.publicKey)
  if (keyAlgorithm === undefined) {
    throw new RegistrationError(
      'KEY_NOT_ALLOWED',
      `the CSR key (${describeKey(csr.publicKey)}) is not allowed`,
    )
  }
  checkAllowed(keyAlgorithm, options)
  if (csr.requestsCaPowers) {
    throw new RegistrationError(
      'EXTENSION_NOT_ALLOWED',
      'the CSR requests CA powers, which are never granted',
    )
  }
  if (csr.commonNames.length !== 1 || csr.commonNames[0] !== identity) {
    throw new RegistrationError(
      'CSR_IDENTITY_MISMATCH',
      'the CSR subject CN must be exactly the connected identity',
    )
  }
  // Some issuers (cert-manager's among them) sign the names a CSR asks for: allow only this device's own names.
  const own = expandTemplate(options.template, identity, registeredBy)
  const { dnsNames, uris, others } = csr.subjectAltNames
  const foreign =
    others > 0 ||
    dnsNames.some((n) => !own.dnsNames.includes(n.toLowerCase())) ||
    uris.some((u) => !own.uris.includes(u))
  if (foreign) {
    throw new RegistrationError('CSR_IDENTITY_MISMATCH', "the CSR asks for names that are not this device's")
  }
  return {
    identity,
    keyAlgorithm,
    csr: { der: csr.der, publicKey: csr.publicKey, spki: csr.spki, subjectAltNames: csr.subjectAltNames },
  }
}
