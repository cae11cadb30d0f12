import type { CertificateState, IssuanceEvent, IssuanceRecord, RevocationReason } from './registry.js'

/** CertificateRow is a row of `certificates` (times are epoch ms: numbers from SQLite, BIGINT strings from PostgreSQL). */
export interface CertificateRow {
  serial: string
  identity: string
  not_before: number | string
  not_after: number | string
  key_source: 'device' | 'bridge'
  issuer: string
  fingerprint: string
  issued_at: number | string
  registered_by: string | null
  request_id: string | null
  request_hash?: string | null
  event?: string | null
  certificate_pem?: string | null
  ca_pem?: string | null
  writer?: string | null
  supersedes?: string | null
  state: CertificateState
  superseded_by: string | null
  revoked_at?: number | string | null
  revocation_reason?: string | null
}

/** DeviceRow is a row of `devices`. */
export interface DeviceRow {
  identity: string
  owner: string | null
  first_issued_at: number
  last_issued_at: number
  reset_at?: number | null
}

/**
 * keepsOwner says whether an issuance leaves the identity's owner as it is: a device's renewal with its own
 * operational certificate does; an issuance for a gateway makes that gateway the owner, and a device's
 * registration with its factory certificate leaves it with none (see NewIssuance.event).
 */
export const keepsOwner = (i: { registeredBy?: string | undefined; event?: string | undefined }): boolean =>
  i.registeredBy === undefined && i.event === 'renewed'

/** optional turns SQL NULL into undefined. */
export const optional = <T>(value: T | null): T | undefined => value ?? undefined

/** toIssuance maps a certificates row (SQLite or PostgreSQL) to its record. */
export function toIssuance(row: CertificateRow): IssuanceRecord {
  return {
    identity: row.identity,
    serialNumber: row.serial,
    notBefore: new Date(Number(row.not_before)),
    notAfter: new Date(Number(row.not_after)),
    keySource: row.key_source,
    issuer: row.issuer,
    sha256Fingerprint: row.fingerprint,
    issuedAt: new Date(Number(row.issued_at)),
    registeredBy: optional(row.registered_by),
    requestId: optional(row.request_id),
    ...(row.request_hash == null ? {} : { requestHash: row.request_hash }),
    ...(row.event == null ? {} : { event: row.event as IssuanceEvent }),
    ...(row.certificate_pem == null ? {} : { certificatePem: row.certificate_pem }),
    ...(row.ca_pem == null ? {} : { caCertificatesPem: row.ca_pem }),
    ...(row.writer == null ? {} : { writer: row.writer }),
    ...(row.supersedes == null ? {} : { supersedes: row.supersedes }),
    state: row.state,
    supersededBy: optional(row.superseded_by),
    ...(row.revoked_at == null ? {} : { revokedAt: new Date(Number(row.revoked_at)) }),
    ...(row.revocation_reason == null ? {} : { revocationReason: row.revocation_reason as RevocationReason }),
  }
}
