import 'reflect-metadata'
import {
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
} from '@peculiar/x509'
import type { ResourceType } from './resources.js'
import { ApiError } from './status.js'

// biome-ignore lint/suspicious/noExplicitAny: the webhook reads arbitrary spec fields
type Spec = Record<string, any>

/** FieldError is one of the webhook's field.ErrorList entries, rendered as apimachinery renders them. */
export type FieldError = string

const DEFAULT_USAGES = ['digital signature', 'key encipherment']

const KU_NAMES: [number, string][] = [
  [KeyUsageFlags.digitalSignature, 'digital signature'],
  [KeyUsageFlags.nonRepudiation, 'content commitment'],
  [KeyUsageFlags.keyEncipherment, 'key encipherment'],
  [KeyUsageFlags.dataEncipherment, 'data encipherment'],
  [KeyUsageFlags.keyAgreement, 'key agreement'],
  [KeyUsageFlags.keyCertSign, 'cert sign'],
  [KeyUsageFlags.cRLSign, 'crl sign'],
  [KeyUsageFlags.encipherOnly, 'encipher only'],
  [KeyUsageFlags.decipherOnly, 'decipher only'],
]
const EKU_NAMES: Record<string, string> = {
  [ExtendedKeyUsage.serverAuth]: 'server auth',
  [ExtendedKeyUsage.clientAuth]: 'client auth',
  [ExtendedKeyUsage.codeSigning]: 'code signing',
  [ExtendedKeyUsage.emailProtection]: 'email protection',
}

/** normalise: "signing" and "digital signature" are one usage to cert-manager (patchDuplicateKeyUsage). */
const normalise = (usages: string[]): string[] =>
  [...new Set(usages.map((u) => (u === 'signing' ? 'digital signature' : u)))].sort()
const sameUsages = (a: string[], b: string[]): boolean => normalise(a).join() === normalise(b).join()

/** csrUsagesOf reads keyUsage and extendedKeyUsage from a CSR in cert-manager's usage names. */
export function csrUsagesOf(csr: Pkcs10CertificateRequest): string[] {
  const ku = csr.extensions.find((e) => e instanceof KeyUsagesExtension) as KeyUsagesExtension | undefined
  const eku = csr.extensions.find((e) => e instanceof ExtendedKeyUsageExtension) as
    | ExtendedKeyUsageExtension
    | undefined
  return [
    ...KU_NAMES.filter(([flag]) => ku && (ku.usages & flag) !== 0).map(([, n]) => n),
    ...(eku?.usages ?? []).flatMap((oid) => EKU_NAMES[String(oid)] ?? []),
  ]
}

/**
 * validateCertificate ports the rules of cert-manager's ValidateCertificate that the bridge can trip: a name
 * is required, commonName at most 64 bytes, an issuerRef name. Messages are apimachinery's field errors.
 */
export function validateCertificate(spec: Spec): FieldError[] {
  const errs: FieldError[] = []
  if (!spec.secretName) errs.push('spec.secretName: Required value: must be specified')
  if (!spec.issuerRef?.name) errs.push('spec.issuerRef.name: Required value: must be specified')
  const cn: string = spec.commonName ?? spec.literalSubject ?? ''
  if (
    !cn &&
    !spec.dnsNames?.length &&
    !spec.uris?.length &&
    !spec.emailAddresses?.length &&
    !spec.ipAddresses?.length
  )
    errs.push(
      'spec: Invalid value: "": at least one of commonName (from the commonName field or from a literalSubject), dnsNames, uriSANs, ipAddresses, emailSANs or otherNames must be set',
    )
  if (Buffer.byteLength(cn) > 64) errs.push('spec.commonName: Too long: may not be more than 64 bytes')
  return errs
}

/**
 * validateCertificateRequest ports ValidateCertificateRequestSpec: the request must decode, and when both the
 * CSR and spec.usages name usages (and spec.usages is not the default) they must match.
 */
export function validateCertificateRequest(spec: Spec): FieldError[] {
  const errs: FieldError[] = []
  if (!spec.issuerRef?.name) errs.push('spec.issuerRef.name: Required value: must be specified')
  if (!spec.request) return [...errs, 'spec.request: Required value: must be specified']
  let csr: Pkcs10CertificateRequest
  try {
    csr = new Pkcs10CertificateRequest(Buffer.from(spec.request, 'base64').toString('utf8'))
  } catch (err) {
    return [...errs, `spec.request: Invalid value: "...": failed to decode csr: ${(err as Error).message}`]
  }
  const usages: string[] = spec.usages ?? []
  if (usages.length > 0 && csr.extensions.length > 0 && !sameUsages(usages, DEFAULT_USAGES)) {
    const wanted = spec.isCA && !usages.includes('cert sign') ? [...usages, 'cert sign'] : usages
    const fromCsr = csrUsagesOf(csr)
    if (fromCsr.length > 0 && !sameUsages(fromCsr, wanted) && !sameUsages(fromCsr, DEFAULT_USAGES))
      errs.push(
        `spec.request: Invalid value: "...": csr key usages do not match specified usages, these should match if both are set: [${normalise(fromCsr).join(' ')}] != [${normalise(wanted).join(' ')}]`,
      )
  }
  return errs
}

/**
 * certManagerWebhook is the validating admission webhook: 406 NotAcceptable with the field errors, as
 * kube-apiserver relays cert-manager's denial.
 */
export function certManagerWebhook(resource: ResourceType, object: { spec?: unknown }): void {
  const spec = (object.spec ?? {}) as Spec
  const errs =
    resource.kind === 'Certificate'
      ? validateCertificate(spec)
      : resource.kind === 'CertificateRequest'
        ? validateCertificateRequest(spec)
        : []
  if (errs.length)
    throw new ApiError(
      406,
      'NotAcceptable',
      `admission webhook "webhook.cert-manager.io" denied the request: ${errs.join(', ')}`,
    )
}
