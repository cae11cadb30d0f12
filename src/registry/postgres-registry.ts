import pg from 'pg'
import type { ExpiryState } from './expiry-state.js'
import { PoolGuard, transaction } from './postgres-guard.js'
import type {
  CertificateState,
  DeviceRecord,
  DeviceSummary,
  IssuanceRecord,
  ListOptions,
  NewIssuance,
  Registry,
  Revocation,
} from './registry.js'
import { type CertificateRow, keepsOwner, toIssuance } from './sqlite-rows.js'

/** POSTGRES_SCHEMA creates the registry's tables (the SQLite schema's twin; times are epoch milliseconds). */
const POSTGRES_SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  identity TEXT PRIMARY KEY,
  owner TEXT,
  first_issued_at BIGINT NOT NULL,
  last_issued_at BIGINT NOT NULL,
  reset_at BIGINT
);
CREATE INDEX IF NOT EXISTS devices_owner ON devices(owner);
CREATE TABLE IF NOT EXISTS certificates (
  id BIGSERIAL UNIQUE,
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL REFERENCES devices(identity),
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  key_source TEXT NOT NULL CHECK (key_source IN ('device', 'bridge')),
  issuer TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  registered_by TEXT,
  request_id TEXT,
  request_hash TEXT,
  event TEXT,
  state TEXT NOT NULL CHECK (state IN ('active', 'superseded', 'revoked')),
  superseded_by TEXT,
  revoked_at BIGINT,
  revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity, issued_at);
-- an issuance supersedes the identity's active certificate: found without reading its history
CREATE INDEX IF NOT EXISTS certificates_active ON certificates(identity) WHERE state = 'active';
ALTER TABLE devices ADD COLUMN IF NOT EXISTS reset_at BIGINT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS revoked_at BIGINT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS revocation_reason TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS request_hash TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS event TEXT;
`

/** SCHEMA_LOCK serializes schema creation when replicas start together (pg_advisory_xact_lock). */
const SCHEMA_LOCK = 0x6d7262

type Row = Record<string, string | null>

const opt = (value: string | null | undefined): string | undefined => value ?? undefined
const ms = (value: string | null | undefined): Date => new Date(Number(value))

/**
 * PostgresRegistry is the registry in PostgreSQL, shared by every worker and replica (state.postgres.url).
 * A record is one transaction: the identity's row is upserted first, which locks it, so two processes
 * recording for one identity at once supersede in order. It holds no key: certificates' metadata only.
 */
export class PostgresRegistry implements Registry {
  readonly #db: PoolGuard

  private constructor(pool: pg.Pool) {
    this.#db = new PoolGuard(pool)
  }

  /** available is false while PostgreSQL cannot be reached (a readiness condition). */
  available(): boolean {
    return this.#db.available()
  }

  /** open connects, creates the schema if needed, and fails (the bridge does not start) when it cannot. */
  static async open(url: string): Promise<PostgresRegistry> {
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 })
    pool.on('error', () => {}) // an idle client's lost connection; the next query reports its own failure
    try {
      await transaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK])
        await client.query(POSTGRES_SCHEMA)
      })
    } catch (err) {
      await pool.end().catch(() => {})
      throw new Error(`state.postgres.url: cannot open the registry (${(err as Error).message})`)
    }
    return new PostgresRegistry(pool)
  }

  /** record stores an issuance; see Registry.record. */
  async record(i: NewIssuance): Promise<void> {
    const at = i.issuedAt.getTime()
    await this.#db.transaction(async (client) => {
      await client.query(
        `INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (identity) DO UPDATE SET owner = CASE WHEN $4 THEN devices.owner ELSE $2 END,
           last_issued_at = $3`,
        [i.identity, i.registeredBy ?? null, at, keepsOwner(i)],
      )
      await client.query(
        `UPDATE certificates SET state = 'superseded', superseded_by = $2 WHERE identity = $1 AND state = 'active'`,
        [i.identity, i.serialNumber],
      )
      await client.query(
        `INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
           issued_at, registered_by, request_id, request_hash, event, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'active')`,
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
        ],
      )
    })
  }

  /** ownerOf returns the owning gateway of an identity. */
  async ownerOf(identity: string): Promise<string | undefined> {
    const { rows } = await this.#db.query<Row>('SELECT owner FROM devices WHERE identity = $1', [identity])
    return opt(rows[0]?.owner)
  }

  /** countOwned counts the identities a gateway owns. */
  async countOwned(gateway: string): Promise<number> {
    const { rows } = await this.#db.query<Row>('SELECT count(*) AS n FROM devices WHERE owner = $1', [
      gateway,
    ])
    return Number(rows[0]?.n ?? 0)
  }

  /** device returns an identity with its certificates (all, or the newest few), newest first. */
  async device(identity: string, options: { certificates?: number } = {}): Promise<DeviceRecord | undefined> {
    const { rows } = await this.#db.query<Row>('SELECT * FROM devices WHERE identity = $1', [identity])
    const row = rows[0]
    if (!row) return undefined
    const certificates = await this.#db.query<CertificateRow>(
      'SELECT * FROM certificates WHERE identity = $1 ORDER BY issued_at DESC, id DESC LIMIT $2',
      [identity, options.certificates ?? null],
    )
    return {
      identity,
      owner: opt(row.owner),
      firstIssuedAt: ms(row.first_issued_at),
      lastIssuedAt: ms(row.last_issued_at),
      ...(row.reset_at == null ? {} : { resetAt: ms(row.reset_at) }),
      certificates: certificates.rows.map(toIssuance),
    }
  }

  /** certificate looks one certificate up by serial number. */
  async certificate(serialNumber: string): Promise<IssuanceRecord | undefined> {
    const { rows } = await this.#db.query<CertificateRow>('SELECT * FROM certificates WHERE serial = $1', [
      serialNumber,
    ])
    return rows[0] ? toIssuance(rows[0]) : undefined
  }

  /** list returns identities with their newest certificate, most recently issued first. */
  async list(options: ListOptions = {}): Promise<DeviceSummary[]> {
    const { rows } = await this.#db.query<Row>(
      `SELECT d.identity, d.owner, d.last_issued_at, c.serial, c.not_after, c.state
       FROM devices d JOIN LATERAL (
         SELECT serial, not_after, state FROM certificates WHERE identity = d.identity
         ORDER BY issued_at DESC, id DESC LIMIT 1) c ON true
       WHERE ($1::text IS NULL OR d.owner = $1)
       ORDER BY d.last_issued_at DESC, d.identity LIMIT $2`,
      [options.owner ?? null, options.limit ?? null],
    )
    return rows.map((r) => ({
      identity: r.identity as string,
      owner: opt(r.owner),
      lastIssuedAt: ms(r.last_issued_at),
      serialNumber: r.serial as string,
      notAfter: ms(r.not_after),
      state: r.state as CertificateState,
    }))
  }

  /** setState changes a certificate's state. */
  async setState(serialNumber: string, state: CertificateState): Promise<boolean> {
    const result = await this.#db.query('UPDATE certificates SET state = $1 WHERE serial = $2', [
      state,
      serialNumber,
    ])
    return (result.rowCount ?? 0) > 0
  }

  /** revoke marks a certificate revoked; see Registry.revoke (the first date and reason stay). */
  async revoke(serialNumber: string, revocation: Revocation): Promise<boolean> {
    const result = await this.#db.query(
      `UPDATE certificates SET state = 'revoked', revoked_at = coalesce(revoked_at, $2),
         revocation_reason = coalesce(revocation_reason, $3) WHERE serial = $1`,
      [serialNumber, revocation.at.getTime(), revocation.reason],
    )
    return (result.rowCount ?? 0) > 0
  }

  /** revoked lists the revoked certificates, oldest revocation first. */
  async revoked(): Promise<IssuanceRecord[]> {
    const { rows } = await this.#db.query<CertificateRow>(
      `SELECT * FROM certificates WHERE state = 'revoked' ORDER BY revoked_at NULLS FIRST, id`,
    )
    return rows.map(toIssuance)
  }

  /** reset records an operator reset of an identity. */
  async reset(identity: string, at: Date): Promise<boolean> {
    const result = await this.#db.query('UPDATE devices SET reset_at = $2 WHERE identity = $1', [
      identity,
      at.getTime(),
    ])
    return (result.rowCount ?? 0) > 0
  }

  /** close ends the pool once its queries are done. */
  async close(): Promise<void> {
    await this.#db.close()
  }

  /** expiryCounts counts identities by the state of their newest certificate; see Registry.expiryCounts. */
  async expiryCounts(now: Date, withinMs: number): Promise<Record<ExpiryState, number>> {
    const { rows } = await this.#db.query<Row>(
      `SELECT count(*) FILTER (WHERE c.state = 'revoked') AS revoked,
         count(*) FILTER (WHERE c.state <> 'revoked' AND c.not_after <= $1) AS expired,
         count(*) FILTER (WHERE c.state <> 'revoked' AND c.not_after > $1 AND c.not_after <= $2) AS expiring,
         count(*) FILTER (WHERE c.state <> 'revoked' AND c.not_after > $2) AS active
       FROM (SELECT DISTINCT ON (identity) state, not_after FROM certificates
         ORDER BY identity, issued_at DESC, id DESC) c`,
      [now.getTime(), now.getTime() + withinMs],
    )
    const n = (state: ExpiryState): number => Number(rows[0]?.[state] ?? 0)
    return { active: n('active'), expiring: n('expiring'), expired: n('expired'), revoked: n('revoked') }
  }
}
