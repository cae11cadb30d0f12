import { buildCertificate, type CertificateProfile, type KeyUsageName } from '../../pki/certificate.js'
import { generateKeyMaterial } from '../../pki/keys.js'
import { toPem } from '../../pki/pem.js'
import type { LoadedCa } from '../../pki/signer.js'
import type { KeyAlgorithm } from '../../protocol/messages.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuer.js'
import { type CertificateTemplate, expandTemplate } from '../template.js'

/** Certificates are backdated by this much so that devices with a slightly slow clock accept them. */
const BACKDATE_MS = 60_000

function keyUsageFor(algorithm: KeyAlgorithm): KeyUsageName[] {
  return algorithm.startsWith('RSA') ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']
}

/** LocalCaIssuerOptions configure the embedded CA. */
export interface LocalCaIssuerOptions {
  readonly ca: LoadedCa
  /** PEM of intermediates to append after the device certificate (empty when the CA is a root). */
  readonly chainPem: string
  readonly template: CertificateTemplate
}

/** LocalCaIssuer signs operational certificates in-process with a CA key loaded at start-up. */
export class LocalCaIssuer implements Issuer {
  readonly name = 'local-ca'
  readonly #options: LocalCaIssuerOptions

  constructor(options: LocalCaIssuerOptions) {
    this.#options = options
  }

  async issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials> {
    const { ca, chainPem, template } = this.#options
    let spki = order.csr?.spki
    let privateKeyPem: string | undefined
    if (!spki) {
      ;({ spki, privateKeyPem } = await generateKeyMaterial(order.keyAlgorithm))
    }
    signal.throwIfAborted()
    const expanded = expandTemplate(template, order.identity, order.registeredBy)
    const now = Math.floor(Date.now() / 1000) * 1000 // certificate times have whole seconds
    const profile: CertificateProfile = {
      ...expanded,
      keyUsage: keyUsageFor(order.keyAlgorithm),
      extKeyUsage: ['clientAuth'],
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + expanded.validityHours * 3600_000),
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

  isReady(): boolean {
    return true
  }

  async close(): Promise<void> {}
}
