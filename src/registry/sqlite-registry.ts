import type { Database, Statement } from 'better-sqlite3'
import type {
  CertificateState,
  DeviceRecord,
  DeviceSummary,
  ExpiryState,
  IssuanceRecord,
  ListOptions,
  NewIssuance,
  RecordExpectation,
  Registry,
  Revocation,
} from './registry.js'
import {
  type CertificateRow,
  type DeviceRow,
  optional,
  type SummaryRow,
  toDevice,
  toIssuance,
  toSummary,
} from './rows.js'
import { NEWEST_FIRST, SqliteRecorder } from './sqlite-record.js'
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

  record(issuance: NewIssuance, expect?: RecordExpectation): Promise<void> {
    return this.#recorder.record(issuance, expect)
  }

  get syncs(): number {
    return this.#recorder.syncs
  }

  async ownerOf(identity: string): Promise<string | undefined> {
    const row = this.#prepared('SELECT owner FROM devices WHERE identity = ?').get(identity) as
      | Pick<DeviceRow, 'owner'>
      | undefined
    return optional(row?.owner)
  }

  async countOwned(gateway: string): Promise<number> {
    const row = this.#prepared('SELECT count(*) AS n FROM devices WHERE owner = ?').get(gateway) as {
      n: number
    }
    return row.n
  }

  async device(identity: string, options: { certificates?: number } = {}): Promise<DeviceRecord | undefined> {
    const row = this.#prepared('SELECT * FROM devices WHERE identity = ?').get(identity) as
      | DeviceRow
      | undefined
    if (!row) return undefined
    const certificates = this.#prepared(
      `SELECT * FROM certificates WHERE identity = ? ${NEWEST_FIRST} LIMIT ?`,
    ).all(identity, options.certificates ?? -1) as CertificateRow[]
    return toDevice(row, certificates)
  }

  async certificate(serialNumber: string): Promise<IssuanceRecord | undefined> {
    const row = this.#prepared('SELECT * FROM certificates WHERE serial = ?').get(serialNumber) as
      | CertificateRow
      | undefined
    return row ? toIssuance(row) : undefined
  }

  async list(options: ListOptions = {}): Promise<DeviceSummary[]> {
    const rows = this.#prepared(`
        SELECT d.identity, d.owner, d.last_issued_at, c.serial, c.not_after, c.state
        FROM devices d JOIN certificates c ON c.rowid = (
          SELECT rowid FROM certificates WHERE identity = d.identity ${NEWEST_FIRST} LIMIT 1)
        WHERE (@owner IS NULL OR d.owner = @owner)
        ORDER BY d.last_issued_at DESC, d.identity LIMIT @limit`).all({
      owner: options.owner ?? null,
      limit: options.limit ?? -1,
    }) as SummaryRow[]
    return rows.map(toSummary)
  }

  async setState(serialNumber: string, state: CertificateState): Promise<boolean> {
    return (
      this.#prepared('UPDATE certificates SET state = ? WHERE serial = ?').run(state, serialNumber).changes >
      0
    )
  }

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

  async revoked(): Promise<IssuanceRecord[]> {
    const rows = this.#prepared(
      `SELECT * FROM certificates WHERE state = 'revoked' ORDER BY revoked_at, rowid`,
    ).all() as CertificateRow[]
    return rows.map(toIssuance)
  }

  async reset(identity: string, at: Date): Promise<boolean> {
    return (
      this.#prepared('UPDATE devices SET reset_at = ? WHERE identity = ?').run(at.getTime(), identity)
        .changes > 0
    )
  }

  async committedSince(writer: string, since: Date): Promise<IssuanceRecord[]> {
    const rows = this.#prepared(
      'SELECT * FROM certificates WHERE writer = ? AND issued_at >= ? ORDER BY rowid',
    ).all(writer, since.getTime()) as CertificateRow[]
    return rows.map(toIssuance)
  }

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
