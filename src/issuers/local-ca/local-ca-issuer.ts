import type { Logger } from 'pino'
import { buildCertificate, type CertificateProfile, type KeyUsageName } from '../../pki/certificate.js'
import { generateKeyMaterial } from '../../pki/keys.js'
import { toPem } from '../../pki/pem.js'
import type { LoadedCa } from '../../pki/signer.js'
import { type ChainValidity, chainValidity, validityProblem } from '../../pki/validity.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { KeyAlgorithm } from '../../protocol/messages.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuer.js'
import { type CertificateTemplate, expandTemplate } from '../template.js'

/** Certificates are backdated by this much so that devices with a slightly slow clock accept them. */
const BACKDATE_MS = 60_000

function keyUsageFor(algorithm: KeyAlgorithm): KeyUsageName[] {
  return algorithm.startsWith('RSA') ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']
}

export interface LocalCaIssuerOptions {
  readonly ca: LoadedCa
  /** PEM of intermediates to append after the device certificate (empty when the CA is a root). */
  readonly chainPem: string
  readonly template: CertificateTemplate
  /** Where the one warning about a CA that expires before `validityHours` goes. */
  readonly logger?: Pick<Logger, 'warn'>
}

/**
 * LocalCaIssuer signs operational certificates in-process with a CA key loaded at start-up. A certificate never
 * outlives its chain: notAfter is capped at the earliest notAfter of the CA and its intermediates. A CA that has
 * expired or is not yet valid cannot be loaded (the constructor throws) and makes isReady() false.
 */
export class LocalCaIssuer implements Issuer {
  readonly name = 'local-ca'
  readonly #options: LocalCaIssuerOptions
  #chainOf: { ca: LoadedCa; chainPem: string; validity: ChainValidity } | undefined
  #warned = false

  constructor(options: LocalCaIssuerOptions) {
    this.#options = options
    const problem = validityProblem(this.#chain, Date.now())
    if (problem) throw new Error(problem)
    this.#warnIfShort(Date.now() + options.template.validityHours * 3600_000)
  }

  /** The validity of the current CA and chain (options may be getters: a rotated CA is seen at once). */
  get #chain(): ChainValidity {
    const { ca, chainPem } = this.#options
    if (this.#chainOf?.ca !== ca || this.#chainOf.chainPem !== chainPem) {
      this.#chainOf = { ca, chainPem, validity: chainValidity(ca.certificate, chainPem) }
    }
    return this.#chainOf.validity
  }

  #warnIfShort(wantedNotAfter: number): void {
    if (this.#warned || wantedNotAfter <= this.#chain.notAfter.getTime()) return
    this.#warned = true
    this.#options.logger?.warn(
      { caNotAfter: this.#chain.notAfter.toISOString(), validityHours: this.#options.template.validityHours },
      'the issuing CA expires before certificate.validityHours: certificates are cut short at its notAfter',
    )
  }

  async issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials> {
    const { ca, chainPem, template } = this.#options
    const chain = this.#chain
    const now = Math.floor(Date.now() / 1000) * 1000 // certificate times have whole seconds
    const problem = validityProblem(chain, now)
    if (problem) throw new RegistrationError('ISSUER_UNAVAILABLE', problem)
    const { spki, privateKeyPem } = order.csr
      ? { spki: order.csr.spki, privateKeyPem: undefined }
      : await generateKeyMaterial(order.keyAlgorithm, signal)
    signal.throwIfAborted()
    const expanded = expandTemplate(template, order.identity, order.registeredBy, order.narrowing)
    const wanted = now + expanded.validityHours * 3600_000
    this.#warnIfShort(wanted)
    const profile: CertificateProfile = {
      ...expanded,
      keyUsage: keyUsageFor(order.keyAlgorithm),
      extKeyUsage: ['clientAuth'],
      notBefore: new Date(Math.max(now - BACKDATE_MS, chain.notBefore.getTime())),
      notAfter: new Date(Math.min(wanted, chain.notAfter.getTime())),
    }
    const certificate = buildCertificate(profile, spki, ca.signer)
    return {
      certificatePem: toPem(certificate.der, 'CERTIFICATE') + chainPem,
      caCertificatesPem: ca.certificatePem,
      ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
      serialNumber: certificate.serialNumber,
      notBefore: profile.notBefore,
      notAfter: profile.notAfter,
    }
  }

  async start(): Promise<void> {}

  /** isReady is false while the CA (or an intermediate) has expired or is not yet valid. */
  isReady(): boolean {
    return validityProblem(this.#chain, Date.now()) === undefined
  }

  async close(): Promise<void> {}
}
