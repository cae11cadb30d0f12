import { type FileHandle, open } from 'node:fs/promises'
import type { Database, Statement } from 'better-sqlite3'
import { GroupCommit } from './group-commit.js'
import {
  type DeviceSummary,
  type ExpiryState,
  type ListOptions,
  type NewIssuance,
  RecordConflict,
  type RecordExpectation,
  type Registry,
} from './registry.js'
import { newestFirst, recordSteps, type SummaryRow, toSummary } from './rows.js'
import { SqlRegistry } from './sql-registry.js'
import { openSqlite } from './sqlite-schema.js'

/** Recording is one record to commit: the issuance and, when fenced, what the caller read as the newest. */
interface Recording {
  readonly issuance: NewIssuance
  readonly expect?: RecordExpectation | undefined
}

/**
 * SqliteRegistry is the embedded registry: one SQLite file (mode 0600) in WAL mode. A record is on disk when
 * `record` resolves: records of one event-loop turn are committed in one transaction and the write-ahead log is
 * then fdatasync'ed in the thread pool (what synchronous=FULL does, without blocking the event loop).
 */
export class SqliteRegistry extends SqlRegistry implements Registry {
  readonly #db: Database
  readonly #statements = new Map<string, Statement>()
  readonly #commits: GroupCommit<Recording>
  #wal: Promise<FileHandle> | undefined

  /** SqliteRegistry opens (creating if needed) the registry file; `readonly` for tools that only read. */
  constructor(file: string, options: { readonly?: boolean } = {}) {
    super('rowid', -1)
    const db = openSqlite(file, options.readonly === true)
    this.#db = db
    const newest = db
      .prepare(`SELECT serial FROM certificates WHERE identity = ? ${newestFirst('rowid')} LIMIT 1`)
      .pluck()
    const recordOne = db.transaction(({ issuance: i, expect }: Recording) => {
      if (expect) {
        const now = newest.get(i.identity) as string | undefined
        if (now !== expect.newest) throw new RecordConflict(i.identity, now, expect.newest)
      }
      for (const [sql, values] of recordSteps(i)) this.#prepared(sql).run(values)
    })
    const recordAll = db.transaction((all: readonly Recording[]) => {
      for (const r of all) recordOne(r)
    })
    this.#commits = new GroupCommit({
      // BEGIN IMMEDIATE: the write lock first (waiting for another worker's commit), then the precondition's
      // read; a deferred transaction that read first could not take the lock once another process wrote (BUSY).
      // A conflict or an error in one record rolls the batch back; GroupCommit then commits them one by one
      commitAll: (all) => recordAll.immediate(all),
      commitOne: (one) => recordOne.immediate(one),
      // synchronous=NORMAL writes the log without fsync; fdatasync in the thread pool makes it durable
      sync: async () => {
        this.#wal ??= open(`${file}-wal`, 'r+')
        await (await this.#wal).datasync()
      },
    })
  }

  /** record resolves once the record is committed and synced, or rejects (RecordConflict, an error). */
  record(issuance: NewIssuance, expect?: RecordExpectation): Promise<void> {
    return this.#commits.add({ issuance, expect })
  }

  get syncs(): number {
    return this.#commits.syncs
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

  /** close commits what is queued, waits for its sync, and closes the log's handle and the file. */
  async close(): Promise<void> {
    if (!this.#db.open) return
    await this.#commits.drain()
    await (await this.#wal?.catch(() => undefined))?.close()
    this.#wal = undefined
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
    const statement = this.#statements.get(sql) ?? this.#db.prepare(sql)
    this.#statements.set(sql, statement)
    return statement
  }

  async expiryCounts(now: Date, withinMs: number): Promise<Record<ExpiryState, number>> {
    const row = this.#prepared(`
        SELECT coalesce(sum(c.state = 'revoked'), 0) AS revoked,
          coalesce(sum(c.state = 'pending'), 0) AS pending,
          coalesce(sum(c.state NOT IN ('revoked', 'pending') AND c.not_after <= @now), 0) AS expired,
          coalesce(sum(c.state NOT IN ('revoked', 'pending') AND c.not_after > @now AND c.not_after <= @soon), 0)
            AS expiring,
          coalesce(sum(c.state NOT IN ('revoked', 'pending') AND c.not_after > @soon), 0) AS active
        FROM devices d JOIN certificates c ON c.rowid = (
          SELECT rowid FROM certificates WHERE identity = d.identity ${newestFirst('rowid')} LIMIT 1)`).get({
      now: now.getTime(),
      soon: now.getTime() + withinMs,
    }) as Record<ExpiryState, number>
    const { active, expiring, expired, pending, revoked } = row
    return { active, expiring, expired, pending, revoked }
  }
}
