import type { ResourceType } from './resources.js'

/**
 * The structural schemas' known fields, for the parts of cert-manager's v1 CRDs the tests write (from the
 * published CRDs). kube-apiserver silently drops ("prunes") any other field of a structural schema.
 */
type Shape = { readonly [field: string]: Shape | true }

const ISSUER_REF: Shape = { name: true, kind: true, group: true }
const SHAPES: Record<string, Shape> = {
  Certificate: {
    spec: {
      additionalOutputFormats: true,
      commonName: true,
      dnsNames: true,
      duration: true,
      emailAddresses: true,
      encodeUsagesInRequest: true,
      ipAddresses: true,
      isCA: true,
      issuerRef: ISSUER_REF,
      keystores: true,
      literalSubject: true,
      nameConstraints: true,
      otherNames: true,
      privateKey: { algorithm: true, encoding: true, rotationPolicy: true, size: true },
      renewBefore: true,
      renewBeforePercentage: true,
      renewal: true,
      revisionHistoryLimit: true,
      secretName: true,
      secretTemplate: { annotations: true, labels: true },
      signatureAlgorithm: true,
      subject: true,
      uris: true,
      usages: true,
    },
    status: {
      acme: true,
      conditions: true,
      failedIssuanceAttempts: true,
      lastFailureTime: true,
      nextPrivateKeySecretName: true,
      notAfter: true,
      notBefore: true,
      renewalTime: true,
      revision: true,
    },
  },
  CertificateRequest: {
    spec: {
      duration: true,
      extra: true,
      groups: true,
      isCA: true,
      issuerRef: ISSUER_REF,
      request: true,
      uid: true,
      usages: true,
      username: true,
    },
    status: { ca: true, certificate: true, conditions: true, failureTime: true },
  },
}
function pruneWith(value: unknown, shape: Shape): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, child] of Object.entries(value)) {
    const known = shape[key]
    if (known === undefined) continue
    out[key] = known === true ? child : pruneWith(child, known)
  }
  return out
}

/** prune drops the fields a cert-manager CRD's structural schema does not know, as kube-apiserver does. */
export function prune<T extends object>(r: ResourceType, object: T): T {
  const shape = SHAPES[r.kind]
  if (!shape) return object
  const o = object as Record<string, unknown>
  const out: Record<string, unknown> = { apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata }
  for (const part of ['spec', 'status'] as const)
    if (o[part] !== undefined) out[part] = pruneWith(o[part], shape[part] as Shape)
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key]
  return out as T
}
