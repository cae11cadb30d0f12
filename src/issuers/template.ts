import type { CertificateProfile } from '../pki/certificate.js'
import { DNS_NAME } from '../pki/names.js'

/** CertificateTemplate is the operator's description of an operational certificate, shared by every issuer. */
export interface CertificateTemplate {
  readonly organization?: string | undefined
  /** DNS name patterns; `{deviceId}` is replaced by the identity. */
  readonly dnsNames: readonly string[]
  /** URI SAN patterns; `{deviceId}` is replaced by the identity. */
  readonly uris: readonly string[]
  readonly validityHours: number
  /** URI SAN patterns for downstream devices only; `{gatewayId}` is the registering gateway, `{deviceId}` the device. */
  readonly gatewayUris?: readonly string[]
}

/** ExpandedTemplate is a template applied to one identity: the certificate's names, and its validity. */
export type ExpandedTemplate = Required<Pick<CertificateProfile, 'commonName' | 'dnsNames' | 'uris'>> &
  Pick<CertificateProfile, 'organization'> &
  Pick<CertificateTemplate, 'validityHours'>

/**
 * Narrowing is what a registration hook took away from a device's expanded template: the names it keeps (a subset)
 * and a shorter validity. It can only take away: expandTemplate keeps no name the template does not make.
 */
export interface Narrowing {
  readonly dnsNames?: readonly string[] | undefined
  readonly uris?: readonly string[] | undefined
  readonly validityHours?: number | undefined
}

const expand = (pattern: string, identity: string): string => pattern.replaceAll('{deviceId}', identity)

/**
 * dnsNameProblem says why `identity` may not hold the template's DNS names, or undefined when it may. Identities
 * may hold `.`, `_` and upper case, which DNS names may not (or fold away): an identity whose DNS names would be
 * malformed is refused; and a downstream deviceId (chosen by a gateway) must be lower case when DNS names are made
 * from it, so that two deviceIds differing only in case never hold the same DNS name.
 */
export function dnsNameProblem(
  template: CertificateTemplate,
  identity: string,
  registeredBy?: string,
): string | undefined {
  if (!template.dnsNames.some((p) => p.includes('{deviceId}'))) return undefined
  for (const pattern of template.dnsNames) {
    const name = expand(pattern, identity)
    if (!DNS_NAME.test(name)) {
      return `"${identity}" makes the DNS name "${name.toLowerCase()}", which is not a valid DNS name (RFC 1123)`
    }
  }
  if (registeredBy !== undefined && identity !== identity.toLowerCase()) {
    return `a deviceId must be lower case when certificate DNS names are made from it ("${identity}" would share them with "${identity.toLowerCase()}")`
  }
  return undefined
}

/**
 * expandTemplate fills in the identity (and, for a downstream device, its gateway). DNS names are lower-cased,
 * as DNS is case-insensitive. A hook's `narrowing` keeps only names the template makes, and never a longer validity.
 */
export function expandTemplate(
  template: CertificateTemplate,
  identity: string,
  registeredBy?: string,
  narrowing?: Narrowing,
): ExpandedTemplate {
  const full = expandFull(template, identity, registeredBy)
  if (!narrowing) return full
  const keep = (all: readonly string[], kept: readonly string[] | undefined): string[] =>
    kept === undefined ? [...all] : all.filter((name) => kept.includes(name))
  return {
    ...full,
    dnsNames: keep(full.dnsNames, narrowing.dnsNames),
    uris: keep(full.uris, narrowing.uris),
    validityHours: Math.min(full.validityHours, narrowing.validityHours ?? full.validityHours),
  }
}

function expandFull(
  template: CertificateTemplate,
  identity: string,
  registeredBy?: string,
): ExpandedTemplate {
  const gatewayUris =
    registeredBy === undefined
      ? []
      : (template.gatewayUris ?? []).map((p) =>
          expand(p, encodeURIComponent(identity)).replaceAll('{gatewayId}', encodeURIComponent(registeredBy)),
        )
  return {
    commonName: identity,
    ...(template.organization === undefined ? {} : { organization: template.organization }),
    dnsNames: template.dnsNames.map((p) => expand(p, identity).toLowerCase()),
    uris: [...template.uris.map((p) => expand(p, encodeURIComponent(identity))), ...gatewayUris],
    validityHours: template.validityHours,
  }
}
