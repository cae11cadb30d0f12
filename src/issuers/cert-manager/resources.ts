import type { X509Certificate } from 'node:crypto'
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node'
import { toPem } from '../../pki/pem.js'
import { usableUntil } from '../../pki/validity.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { KeyAlgorithm } from '../../protocol/messages.js'
import type { Credentials, IssuanceOrder, VerifiedCsr } from '../issuer.js'
import type { CertificateTemplate, ExpandedTemplate } from '../template.js'
import { csrUsages } from './csr-usages.js'
import { CERT_MANAGER_GROUP, CERT_MANAGER_VERSION } from './kube-api.js'
import { objectMetadata, resourceName, secretName } from './names.js'

export interface Condition {
  readonly type: string
  readonly status: 'True' | 'False' | 'Unknown'
  readonly reason?: string
  readonly message?: string
  readonly observedGeneration?: number
}

/** IssuerRef names the cert-manager issuer that signs; group is always explicit. */
export interface IssuerRef {
  readonly name: string
  readonly kind: 'Issuer' | 'ClusterIssuer'
  readonly group: string
}

/** CertManagerOptions are the validated settings of the cert-manager issuer. */
export interface CertManagerOptions {
  readonly namespace: string
  readonly issuerRef: IssuerRef
  readonly secretRetention: 'delete' | 'keep'
  readonly requestRetention: 'delete' | 'keep'
  readonly template: CertificateTemplate
}

/** Certificate is the part of cert-manager's Certificate the bridge reads. */
export interface Certificate extends KubernetesObject {
  readonly spec?: Record<string, unknown> & { secretName?: string }
  readonly status?: { conditions?: Condition[]; revision?: number; notAfter?: string }
}

/** CertificateRequest is the part of cert-manager's CertificateRequest the bridge reads. */
export interface CertificateRequest extends KubernetesObject {
  readonly spec?: Record<string, unknown>
  readonly status?: { conditions?: Condition[]; certificate?: string; ca?: string }
}

/** IssuerObject is the part of an Issuer or ClusterIssuer the bridge reads: its Ready condition. */
export interface IssuerObject extends KubernetesObject {
  readonly status?: { conditions?: Condition[] }
}

export type Secret = V1Secret

/** decodeBase64 reads a base64 field of a Secret or a CertificateRequest status as UTF-8 text. */
export const decodeBase64 = (value: string | undefined): string =>
  Buffer.from(value ?? '', 'base64').toString('utf8')

/** issuedCredentials is the answer for what cert-manager issued: `chain` is the leaf first, then intermediates. */
export function issuedCredentials(
  leaf: X509Certificate,
  chain: string,
  caCertificatesPem: string,
  privateKeyPem?: string,
): Credentials {
  return {
    certificatePem: chain,
    caCertificatesPem,
    ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
    serialNumber: leaf.serialNumber.toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    // never later than the chain above it: a certificate is no use once its CA has expired
    notAfter: usableUntil(chain, caCertificatesPem),
  }
}

/** refused is ISSUANCE_FAILED; the condition's own message (the issuer's internals) is only the cause. */
export const refused = (message: string, detail: string): RegistrationError =>
  new RegistrationError('ISSUANCE_FAILED', message, { cause: new Error(detail) })

export function conditionOf(
  object: { status?: { conditions?: Condition[] } },
  type: string,
): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type)
}

const API_VERSION = `${CERT_MANAGER_GROUP}/${CERT_MANAGER_VERSION}`

/** usagesFor are the key usages of a device client certificate (RSA keys also encipher). */
export function usagesFor(algorithm: KeyAlgorithm): string[] {
  return algorithm.startsWith('RSA')
    ? ['digital signature', 'key encipherment', 'client auth']
    : ['digital signature', 'client auth']
}

function privateKeyFor(algorithm: KeyAlgorithm) {
  const common = { encoding: 'PKCS8', rotationPolicy: 'Always' }
  if (algorithm === 'Ed25519') return { ...common, algorithm: 'Ed25519' }
  if (algorithm.startsWith('ECDSA'))
    return { ...common, algorithm: 'ECDSA', size: Number(algorithm.slice(-3)) }
  return { ...common, algorithm: 'RSA', size: Number(algorithm.slice(4)) }
}

/** certificateFor is the Certificate for server-side key mode, built from the same template as the embedded CA. */
export function certificateFor(
  template: ExpandedTemplate,
  algorithm: KeyAlgorithm,
  issuerRef: IssuerRef,
  namespace: string,
): object {
  const identity = template.commonName
  const metadata = objectMetadata(resourceName(identity), namespace, identity)
  return {
    apiVersion: API_VERSION,
    kind: 'Certificate',
    metadata,
    spec: {
      commonName: identity,
      ...(template.organization === undefined ? {} : { subject: { organizations: [template.organization] } }),
      ...(template.dnsNames.length ? { dnsNames: [...template.dnsNames] } : {}),
      ...(template.uris.length ? { uris: [...template.uris] } : {}),
      usages: usagesFor(algorithm),
      privateKey: privateKeyFor(algorithm),
      duration: `${template.validityHours}h`,
      secretName: secretName(identity),
      // the Secret carries the bridge's label too, so one label-filtered informer sees it
      secretTemplate: { labels: metadata.labels, annotations: metadata.annotations },
      issuerRef: { ...issuerRef },
    },
  }
}

/** certificateRequestFor is the CertificateRequest carrying a device's CSR. */
export function certificateRequestFor(
  name: string,
  order: IssuanceOrder & { csr: VerifiedCsr },
  { issuerRef, namespace, template }: CertManagerOptions,
): object {
  return {
    apiVersion: API_VERSION,
    kind: 'CertificateRequest',
    metadata: objectMetadata(name, namespace, order.identity),
    spec: {
      request: Buffer.from(toPem(order.csr.der, 'CERTIFICATE REQUEST')).toString('base64'),
      isCA: false,
      // the CSR's own usages, when it declares any (cert-manager's webhook requires them to match)
      usages: csrUsages(order.csr.der) ?? usagesFor(order.keyAlgorithm),
      duration: `${Math.min(template.validityHours, order.narrowing?.validityHours ?? Number.POSITIVE_INFINITY)}h`,
      issuerRef: { ...issuerRef },
    },
  }
}
