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

/** ExpandedTemplate is a template applied to one identity. */
export interface ExpandedTemplate {
  readonly commonName: string
  readonly organization?: string
  readonly dnsNames: readonly string[]
  readonly uris: readonly string[]
  readonly validityHours: number
}

const expand = (pattern: string, identity: string): string => pattern.replaceAll('{deviceId}', identity)

/**
 * expandTemplate fills in the identity (and, for a downstream device, its gateway). DNS names are lower-cased,
 * as DNS is case-insensitive.
 */
export function expandTemplate(
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
