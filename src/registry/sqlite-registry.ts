import type { Database, Statement } from 'better-sqlite3'
import type {
  DeviceSummary,
  ExpiryState,
  ListOptions,
  NewIssuance,
  RecordExpectation,
  Registry,
} from './registry.js'
import { newestFirst, type SummaryRow, toSummary } from './rows.js'
import { SqlRegistry } from './sql-registry.js'
import { SqliteRecorder } from './sqlite-record.js'
import { openSqlite } from './sqlite-schema.js'

/**
 * SqliteRegistry is the embedded registry: one SQLite file (mode 0600) in WAL mode. A record is on disk when
 * `record` resolves: records of one event-loop turn are committed in one transaction and the write-ahead log is
 * then fdatasync'ed in the thread pool (what synchronous=FULL does, without blocking the event loop).
 */
export class SqliteRegistry extends SqlRegistry implements Registry {
  readonly #db: Database
  readonly #statements = new Map<string, Statement>()
  readonly #recorder: SqliteRecorder

  /** SqliteRegistry opens (creating if needed) the registry file; `readonly` for tools that only read. */
  constructor(file: string, options: { readonly?: boolean } = {}) {
    super('rowid', -1)
    this.#db = openSqlite(file, options.readonly === true)
    this.#recorder = new SqliteRecorder(this.#db, file)
  }

  record(issuance: NewIssuance, expect?: RecordExpectation): Promise<void> {
    return this.#recorder.record(issuance, expect)
  }

  get syncs(): number {
    return this.#recorder.syncs
  }

  async list(options: ListOptions = {}): Promise<DeviceSummary[]> {
    const rows = this.#prepared(`
        SELECT d.identity, d.owner, d.last_issued_at, c.serial, c.not_after, c.state
        FROM devices d JOIN certificates c ON c.rowid = (
          SELECT rowid FROM certificates WHERE identity = d.identity ${newestFirst('rowid')} LIMIT 1)
        WHERE (@owner IS NULL OR d.owner = @owner)
        ORDER BY d.last_issued_at DESC, d.identity LIMIT @limit`).all({
      owner: options.owner ?? null,
      limit: options.limit ?? -1,
    }) as SummaryRow[]
    return rows.map(toSummary)
  }

  async close(): Promise<void> {
    if (!this.#db.open) return
    await this.#recorder.close()
    this.#db.close()
  }

  protected async rows<R>(sql: string, values: unknown[]): Promise<R[]> {
    return this.#prepared(sql).all(...values) as R[]
  }

  protected async changes(sql: string, values: unknown[]): Promise<number> {
    return this.#prepared(sql).run(...values).changes
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
          SELECT rowid FROM certificates WHERE identity = d.identity ${newestFirst('rowid')} LIMIT 1)`).get({
      now: now.getTime(),
      soon: now.getTime() + withinMs,
    }) as Record<ExpiryState, number>
    return { active: row.active, expiring: row.expiring, expired: row.expired, revoked: row.revoked }
  }
}
