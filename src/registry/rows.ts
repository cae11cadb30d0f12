import type {
  CertificateState,
  DeviceRecord,
  DeviceSummary,
  IssuanceEvent,
  IssuanceRecord,
  NewIssuance,
  Provisioning,
  RevocationReason,
} from './registry.js'

// The tables and their rows, the same in SQLite and PostgreSQL (their twins must not drift apart).

/**
 * tables creates the registry's tables with times (epoch milliseconds) of type `time`; `id` is PostgreSQL's
 * column of commit order (SQLite has its rowid). The index on `writer` follows each store's migrations: an
 * older table lacks the column.
 */
export const tables = (time: 'INTEGER' | 'BIGINT', id = ''): string => `
CREATE TABLE IF NOT EXISTS devices (
  identity TEXT PRIMARY KEY,
  owner TEXT,
  first_issued_at ${time} NOT NULL,
  last_issued_at ${time} NOT NULL,
  reset_at ${time}
);
CREATE INDEX IF NOT EXISTS devices_owner ON devices(owner);
CREATE TABLE IF NOT EXISTS certificates (${id}
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL REFERENCES devices(identity),
  not_before ${time} NOT NULL,
  not_after ${time} NOT NULL,
  key_source TEXT NOT NULL CHECK (key_source IN ('device', 'bridge')),
  issuer TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  issued_at ${time} NOT NULL,
  registered_by TEXT,
  request_id TEXT,
  request_hash TEXT,
  event TEXT,
  certificate_pem TEXT,
  ca_pem TEXT,
  endpoint_url TEXT,
  writer TEXT,
  supersedes TEXT,
  state TEXT NOT NULL CHECK (state IN ('active', 'superseded', 'revoked', 'pending')),
  superseded_by TEXT,
  revoked_at ${time},
  revocation_reason TEXT,
  token_sha256 TEXT,
  token_expires_at ${time},
  template_name TEXT,
  thing_name TEXT,
  provision_hash TEXT,
  device_configuration TEXT
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity, issued_at);
`

/** SCHEMA_5_INDEXES follow each store's migrations to schema 5 (an older table lacks their columns). */
export const SCHEMA_5_INDEXES = `
-- an issuance supersedes the identity's active or pending certificate: found without reading its history
CREATE INDEX IF NOT EXISTS certificates_live ON certificates(identity) WHERE state IN ('active', 'pending');
CREATE INDEX IF NOT EXISTS certificates_pending ON certificates(state) WHERE state = 'pending';
CREATE UNIQUE INDEX IF NOT EXISTS certificates_token ON certificates(token_sha256);
`

/** SCHEMA_5_COLUMNS are the columns schema 5 added to certificates (AWS fleet provisioning). */
export const SCHEMA_5_COLUMNS = [
  'token_sha256',
  'token_expires_at',
  'template_name',
  'thing_name',
  'provision_hash',
  'device_configuration',
] as const

/** newestFirst orders an identity's certificates as `device` reads them (the record's precondition too). */
export const newestFirst = (order: 'rowid' | 'id'): string => `ORDER BY issued_at DESC, ${order} DESC`

/** Ms is a time as read: epoch ms, a number from SQLite, a BIGINT string from PostgreSQL. */
type Ms = number | string

/** CertificateRow is a row of `certificates`. */
export interface CertificateRow {
  serial: string
  identity: string
  not_before: Ms
  not_after: Ms
  key_source: 'device' | 'bridge'
  issuer: string
  fingerprint: string
  issued_at: Ms
  registered_by: string | null
  request_id: string | null
  request_hash?: string | null
  event?: string | null
  certificate_pem?: string | null
  ca_pem?: string | null
  endpoint_url?: string | null
  writer?: string | null
  supersedes?: string | null
  state: CertificateState
  superseded_by: string | null
  revoked_at?: Ms | null
  revocation_reason?: string | null
  token_sha256?: string | null
  token_expires_at?: Ms | null
  template_name?: string | null
  thing_name?: string | null
  provision_hash?: string | null
  device_configuration?: string | null
}

/** DeviceRow is a row of `devices`. */
export interface DeviceRow {
  identity: string
  owner: string | null
  first_issued_at: Ms
  last_issued_at: Ms
  reset_at?: Ms | null
}

/** SummaryRow is a row of `list`: an identity with its newest certificate. */
export type SummaryRow = Pick<DeviceRow, 'identity' | 'owner' | 'last_issued_at'> &
  Pick<CertificateRow, 'serial' | 'not_after' | 'state'>

/** Step is one statement with its values. */
type Step = [sql: string, values: unknown[]]

/**
 * recordSteps are a record's statements (`?` placeholders) with their values, in order, in one transaction: the
 * identity upserted (in PostgreSQL the row lock that orders concurrent records of it), its active certificate
 * superseded (a pending one revoked: it never worked, and its token dies with it), the new one inserted, active or
 * pending. The owner stays on a device's renewal with its own operational
 * certificate; an issuance for a gateway makes that gateway the owner, and a device's registration with its
 * factory certificate leaves it with none (see NewIssuance.event).
 */
export function recordSteps(i: NewIssuance): [Step, Step, Step] {
  const at = i.issuedAt.getTime()
  const keepsOwner = i.registeredBy === undefined && i.event === 'renewed'
  return [
    [
      `INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (identity) DO UPDATE SET owner = CASE WHEN ? = 1 THEN devices.owner ELSE excluded.owner END,
         last_issued_at = excluded.last_issued_at`,
      [i.identity, i.registeredBy ?? null, at, at, keepsOwner ? 1 : 0],
    ],
    [
      `UPDATE certificates SET superseded_by = ?,
         state = CASE WHEN state = 'pending' THEN 'revoked' ELSE 'superseded' END,
         revoked_at = CASE WHEN state = 'pending' THEN ? ELSE revoked_at END,
         revocation_reason = CASE WHEN state = 'pending' THEN 'superseded' ELSE revocation_reason END
       WHERE identity = ? AND state IN ('active', 'pending')`,
      [i.serialNumber, at, i.identity],
    ],
    [
      `INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint, issued_at,
         registered_by, request_id, request_hash, event, certificate_pem, ca_pem, endpoint_url, writer, supersedes,
         state)
       VALUES (${'?, '.repeat(17)}?)`,
      [
        i.serialNumber,
        i.identity,
        i.notBefore.getTime(),
        i.notAfter.getTime(),
        i.keySource,
        i.issuer,
        i.sha256Fingerprint,
        at,
        i.registeredBy ?? null,
        i.requestId ?? null,
        i.requestHash ?? null,
        i.event ?? null,
        i.certificatePem ?? null,
        i.caCertificatesPem ?? null,
        i.endpoint ?? null,
        i.writer ?? null,
        i.supersedes ?? null,
        i.pending ? 'pending' : 'active',
      ],
    ],
  ]
}

/** optional turns SQL NULL into undefined. */
export const optional = <T>(value: T | null | undefined): T | undefined => value ?? undefined

const date = (ms: Ms): Date => new Date(Number(ms))

/** toIssuance maps a certificates row to its record: every field, undefined where the row has NULL. */
export function toIssuance(row: CertificateRow): IssuanceRecord {
  return {
    identity: row.identity,
    serialNumber: row.serial,
    notBefore: date(row.not_before),
    notAfter: date(row.not_after),
    keySource: row.key_source,
    issuer: row.issuer,
    sha256Fingerprint: row.fingerprint,
    issuedAt: date(row.issued_at),
    registeredBy: optional(row.registered_by),
    requestId: optional(row.request_id),
    requestHash: optional(row.request_hash),
    event: optional(row.event) as IssuanceEvent | undefined,
    certificatePem: optional(row.certificate_pem),
    caCertificatesPem: optional(row.ca_pem),
    endpoint: optional(row.endpoint_url),
    writer: optional(row.writer),
    supersedes: optional(row.supersedes),
    state: row.state,
    supersededBy: optional(row.superseded_by),
    revokedAt: row.revoked_at == null ? undefined : date(row.revoked_at),
    revocationReason: optional(row.revocation_reason) as RevocationReason | undefined,
    ownershipTokenSha256: optional(row.token_sha256),
    tokenExpiresAt: row.token_expires_at == null ? undefined : date(row.token_expires_at),
    provisioning: provisioningOf(row),
  }
}

/** provisioningOf reads what RegisterThing recorded, or undefined. */
function provisioningOf(row: CertificateRow): Provisioning | undefined {
  if (row.template_name == null || row.thing_name == null) return undefined
  return {
    templateName: row.template_name,
    thingName: row.thing_name,
    provisionHash: row.provision_hash ?? '',
    deviceConfiguration: JSON.parse(row.device_configuration ?? '{}') as Record<string, string>,
  }
}

/** toDevice maps a devices row and its certificates rows to the record. */
export const toDevice = (row: DeviceRow, certificates: CertificateRow[]): DeviceRecord => ({
  identity: row.identity,
  owner: optional(row.owner),
  firstIssuedAt: date(row.first_issued_at),
  lastIssuedAt: date(row.last_issued_at),
  resetAt: row.reset_at == null ? undefined : date(row.reset_at),
  certificates: certificates.map(toIssuance),
})

/** toSummary maps a row of `list`. */
export const toSummary = (r: SummaryRow): DeviceSummary => ({
  identity: r.identity,
  owner: optional(r.owner),
  lastIssuedAt: date(r.last_issued_at),
  serialNumber: r.serial,
  notAfter: date(r.not_after),
  state: r.state,
})
