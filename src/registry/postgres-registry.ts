import pg from 'pg'
import type { ExpiryState } from './expiry-state.js'
import { PoolGuard } from './postgres-guard.js'
import { createSchema } from './postgres-schema.js'
import {
  type CertificateState,
  type DeviceRecord,
  type DeviceSummary,
  type IssuanceRecord,
  type ListOptions,
  type NewIssuance,
  RecordConflict,
  type RecordExpectation,
  type Registry,
  type Revocation,
} from './registry.js'
import { type CertificateRow, keepsOwner, toIssuance } from './sqlite-rows.js'

type Row = Record<string, string | null>

const opt = (value: string | null | undefined): string | undefined => value ?? undefined
const ms = (value: string | null | undefined): Date => new Date(Number(value))

/** NEWEST_FIRST orders an identity's certificates as `device` reads them (the record's precondition too). */
const NEWEST_FIRST = 'ORDER BY issued_at DESC, id DESC'

/**
 * PostgresRegistry is the registry in PostgreSQL, shared by every worker and replica (state.postgres.url).
 * A record is one transaction: the identity's row is upserted first, which locks it, so two processes
 * recording for one identity at once supersede (and check their precondition) in order. It holds no key:
 * certificates' metadata only.
 */
export class PostgresRegistry implements Registry {
  readonly #db: PoolGuard
  #syncs = 0

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
      await createSchema(pool)
    } catch (err) {
      await pool.end().catch(() => {})
      throw new Error(`state.postgres.url: cannot open the registry (${(err as Error).message})`)
    }
    return new PostgresRegistry(pool)
  }

  /** syncs counts the committed record transactions (one WAL flush each); see Registry.syncs. */
  get syncs(): number {
    return this.#syncs
  }

  /** record stores an issuance, after its precondition holds; see Registry.record. */
  async record(i: NewIssuance, expect?: RecordExpectation): Promise<void> {
    const at = i.issuedAt.getTime()
    await this.#db.transaction(async (client) => {
      await client.query(
        `INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (identity) DO UPDATE SET owner = CASE WHEN $4 THEN devices.owner ELSE $2 END,
           last_issued_at = $3`,
        [i.identity, i.registeredBy ?? null, at, keepsOwner(i)],
      )
      if (expect) {
        // the upsert locked the identity's row: a concurrent record of it waits, then reads this one's commit
        const { rows } = await client.query<Row>(
          `SELECT serial FROM certificates WHERE identity = $1 ${NEWEST_FIRST} LIMIT 1`,
          [i.identity],
        )
        const newest = opt(rows[0]?.serial)
        if (newest !== expect.newest) throw new RecordConflict(i.identity, newest, expect.newest)
      }
      await client.query(
        `UPDATE certificates SET state = 'superseded', superseded_by = $2 WHERE identity = $1 AND state = 'active'`,
        [i.identity, i.serialNumber],
      )
      await client.query(
        `INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
           issued_at, registered_by, request_id, request_hash, event, certificate_pem, ca_pem, writer, supersedes,
           state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'active')`,
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
          i.writer ?? null,
          i.supersedes ?? null,
        ],
      )
    })
    this.#syncs++
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
      `SELECT * FROM certificates WHERE identity = $1 ${NEWEST_FIRST} LIMIT $2`,
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
         ${NEWEST_FIRST} LIMIT 1) c ON true
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

  /** committedSince lists what `writer` committed since `since`, in id order. */
  async committedSince(writer: string, since: Date): Promise<IssuanceRecord[]> {
    const { rows } = await this.#db.query<CertificateRow>(
      'SELECT * FROM certificates WHERE writer = $1 AND issued_at >= $2 ORDER BY id',
      [writer, since.getTime()],
    )
    return rows.map(toIssuance)
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
