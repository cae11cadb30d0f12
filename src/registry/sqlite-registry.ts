import type { Database, Statement } from 'better-sqlite3'
import type { ExpiryState } from './expiry-state.js'
import type {
  CertificateState,
  DeviceRecord,
  DeviceSummary,
  IssuanceRecord,
  ListOptions,
  NewIssuance,
  RecordExpectation,
  Registry,
  Revocation,
} from './registry.js'
import { NEWEST_FIRST, SqliteRecorder } from './sqlite-record.js'
import { type CertificateRow, type DeviceRow, optional, toIssuance } from './sqlite-rows.js'
import { openSqlite } from './sqlite-schema.js'

/**
 * SqliteRegistry is the embedded registry: one SQLite file (mode 0600) in WAL mode. A record is on disk when
 * `record` resolves: records of one event-loop turn are committed in one transaction and the write-ahead log is
 * then fdatasync'ed in the thread pool (what synchronous=FULL does, without blocking the event loop).
 */
export class SqliteRegistry implements Registry {
  readonly #db: Database
  readonly #statements = new Map<string, Statement>()
  readonly #recorder: SqliteRecorder

  /** SqliteRegistry opens (creating if needed) the registry file; `readonly` for tools that only read. */
  constructor(file: string, options: { readonly?: boolean } = {}) {
    this.#db = openSqlite(file, options.readonly === true)
    this.#recorder = new SqliteRecorder(this.#db, file)
  }

  /** record stores an issuance, after its precondition holds; see Registry.record. */
  record(issuance: NewIssuance, expect?: RecordExpectation): Promise<void> {
    return this.#recorder.record(issuance, expect)
  }

  /** syncs counts the write-ahead log's fdatasyncs for records; see Registry.syncs. */
  get syncs(): number {
    return this.#recorder.syncs
  }

  /** ownerOf returns the owning gateway of an identity. */
  async ownerOf(identity: string): Promise<string | undefined> {
    const row = this.#prepared('SELECT owner FROM devices WHERE identity = ?').get(identity) as
      | Pick<DeviceRow, 'owner'>
      | undefined
    return optional(row?.owner ?? null)
  }

  /** countOwned counts the identities a gateway owns. */
  async countOwned(gateway: string): Promise<number> {
    const row = this.#prepared('SELECT count(*) AS n FROM devices WHERE owner = ?').get(gateway) as {
      n: number
    }
    return row.n
  }

  /** device returns an identity with its certificates (all, or the newest few), newest first. */
  async device(identity: string, options: { certificates?: number } = {}): Promise<DeviceRecord | undefined> {
    const row = this.#prepared('SELECT * FROM devices WHERE identity = ?').get(identity) as
      | DeviceRow
      | undefined
    if (!row) return undefined
    const certificates = this.#prepared(
      `SELECT * FROM certificates WHERE identity = ? ${NEWEST_FIRST} LIMIT ?`,
    ).all(identity, options.certificates ?? -1) as CertificateRow[]
    return {
      identity: row.identity,
      owner: optional(row.owner),
      firstIssuedAt: new Date(row.first_issued_at),
      lastIssuedAt: new Date(row.last_issued_at),
      ...(row.reset_at == null ? {} : { resetAt: new Date(row.reset_at) }),
      certificates: certificates.map(toIssuance),
    }
  }

  /** certificate looks one certificate up by serial number. */
  async certificate(serialNumber: string): Promise<IssuanceRecord | undefined> {
    const row = this.#prepared('SELECT * FROM certificates WHERE serial = ?').get(serialNumber) as
      | CertificateRow
      | undefined
    return row ? toIssuance(row) : undefined
  }

  /** list returns identities with their newest certificate, most recently issued first. */
  async list(options: ListOptions = {}): Promise<DeviceSummary[]> {
    const rows = this.#prepared(`
        SELECT d.identity, d.owner, d.last_issued_at, c.serial, c.not_after, c.state
        FROM devices d JOIN certificates c ON c.rowid = (
          SELECT rowid FROM certificates WHERE identity = d.identity ${NEWEST_FIRST} LIMIT 1)
        WHERE (@owner IS NULL OR d.owner = @owner)
        ORDER BY d.last_issued_at DESC, d.identity LIMIT @limit`).all({
      owner: options.owner ?? null,
      limit: options.limit ?? -1,
    }) as (DeviceRow & Pick<CertificateRow, 'serial' | 'not_after' | 'state'>)[]
    return rows.map((r) => ({
      identity: r.identity,
      owner: optional(r.owner),
      lastIssuedAt: new Date(r.last_issued_at),
      serialNumber: r.serial,
      notAfter: new Date(r.not_after),
      state: r.state,
    }))
  }

  /** setState changes a certificate's state. */
  async setState(serialNumber: string, state: CertificateState): Promise<boolean> {
    return (
      this.#prepared('UPDATE certificates SET state = ? WHERE serial = ?').run(state, serialNumber).changes >
      0
    )
  }

  /** revoke marks a certificate revoked; see Registry.revoke. */
  async revoke(serialNumber: string, revocation: Revocation): Promise<boolean> {
    const changes = this.#prepared(`UPDATE certificates SET state = 'revoked',
          revoked_at = coalesce(revoked_at, @at), revocation_reason = coalesce(revocation_reason, @reason)
        WHERE serial = @serial`).run({
      serial: serialNumber,
      at: revocation.at.getTime(),
      reason: revocation.reason,
    }).changes
    return changes > 0
  }

  /** revoked lists the revoked certificates, oldest revocation first. */
  async revoked(): Promise<IssuanceRecord[]> {
    const rows = this.#prepared(
      `SELECT * FROM certificates WHERE state = 'revoked' ORDER BY revoked_at, rowid`,
    ).all() as CertificateRow[]
    return rows.map(toIssuance)
  }

  /** reset records an operator reset of an identity. */
  async reset(identity: string, at: Date): Promise<boolean> {
    return (
      this.#prepared('UPDATE devices SET reset_at = ? WHERE identity = ?').run(at.getTime(), identity)
        .changes > 0
    )
  }

  /** committedSince lists what `writer` committed since `since`, in commit (rowid) order. */
  async committedSince(writer: string, since: Date): Promise<IssuanceRecord[]> {
    const rows = this.#prepared(
      'SELECT * FROM certificates WHERE writer = ? AND issued_at >= ? ORDER BY rowid',
    ).all(writer, since.getTime()) as CertificateRow[]
    return rows.map(toIssuance)
  }

  /** close closes the database file. */
  async close(): Promise<void> {
    if (!this.#db.open) return
    await this.#recorder.close()
    this.#db.close()
  }

  /** #prepared compiles each statement once (preparing costs more than running one of these). */
  #prepared(sql: string): Statement {
    let statement = this.#statements.get(sql)
    if (!statement) {
      statement = this.#db.prepare(sql)
      this.#statements.set(sql, statement)
    }
    return statement
  }

  /** expiryCounts counts identities by the state of their newest certificate; see Registry.expiryCounts. */
  async expiryCounts(now: Date, withinMs: number): Promise<Record<ExpiryState, number>> {
    const row = this.#prepared(`
        SELECT coalesce(sum(c.state = 'revoked'), 0) AS revoked,
          coalesce(sum(c.state <> 'revoked' AND c.not_after <= @now), 0) AS expired,
          coalesce(sum(c.state <> 'revoked' AND c.not_after > @now AND c.not_after <= @soon), 0) AS expiring,
          coalesce(sum(c.state <> 'revoked' AND c.not_after > @soon), 0) AS active
        FROM devices d JOIN certificates c ON c.rowid = (
          SELECT rowid FROM certificates WHERE identity = d.identity ${NEWEST_FIRST} LIMIT 1)`).get({
      now: now.getTime(),
      soon: now.getTime() + withinMs,
    }) as Record<ExpiryState, number>
    return { active: row.active, expiring: row.expiring, expired: row.expired, revoked: row.revoked }
  }
}
