import { type FileHandle, open } from 'node:fs/promises'
import type Database from 'better-sqlite3'
import { GroupCommit } from './group-commit.js'
import { type NewIssuance, RecordConflict, type RecordExpectation } from './registry.js'
import { certificateValues, INSERT_CERTIFICATE, keepsOwner, newestFirst } from './rows.js'

/** Recording is one record to commit: the issuance and, when fenced, what the caller read as the newest. */
interface Recording {
  readonly issuance: NewIssuance
  readonly expect?: RecordExpectation | undefined
}

/**
 * SqliteRecorder writes records: each in a transaction (identity upserted, its active certificate superseded,
 * the certificate inserted, after its precondition holds), records of one event-loop turn together, then the
 * write-ahead log is fdatasync'ed in the thread pool (what synchronous=FULL does, without blocking the event loop).
 */
export class SqliteRecorder {
  readonly #commits: GroupCommit<Recording>
  #wal: Promise<FileHandle> | undefined

  constructor(db: Database.Database, file: string) {
    const upsertDevice = db.prepare(`
      INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES (@identity, @owner, @at, @at)
      ON CONFLICT (identity) DO UPDATE SET owner = CASE WHEN @keepOwner THEN owner ELSE @owner END,
        last_issued_at = @at`)
    const newest = db
      .prepare(`SELECT serial FROM certificates WHERE identity = ? ${newestFirst('rowid')} LIMIT 1`)
      .pluck()
    const supersede = db.prepare(
      `UPDATE certificates SET state = 'superseded', superseded_by = @serial WHERE identity = @identity AND state = 'active'`,
    )
    const insertCertificate = db.prepare(INSERT_CERTIFICATE)
    const recordOne = db.transaction(({ issuance: i, expect }: Recording) => {
      if (expect) {
        const now = newest.get(i.identity) as string | undefined
        if (now !== expect.newest) throw new RecordConflict(i.identity, now, expect.newest)
      }
      upsertDevice.run({
        identity: i.identity,
        owner: i.registeredBy ?? null,
        keepOwner: keepsOwner(i) ? 1 : 0,
        at: i.issuedAt.getTime(),
      })
      supersede.run({ identity: i.identity, serial: i.serialNumber })
      insertCertificate.run(certificateValues(i))
    })
    this.#commits = new GroupCommit({
      // a conflict or an error in one record rolls the batch back; GroupCommit then commits them one by one
      commitAll: db.transaction((all: readonly Recording[]) => {
        for (const r of all) recordOne(r)
      }),
      commitOne: recordOne,
      // synchronous=NORMAL writes the log without fsync; fdatasync in the thread pool makes it durable
      sync: async () => {
        this.#wal ??= open(`${file}-wal`, 'r+')
        await (await this.#wal).datasync()
      },
    })
  }

  /** syncs counts the fdatasyncs performed. */
  get syncs(): number {
    return this.#commits.syncs
  }

  /** record queues a record; it resolves once committed and synced, or rejects (RecordConflict, an error). */
  record(issuance: NewIssuance, expect: RecordExpectation | undefined): Promise<void> {
    return this.#commits.add({ issuance, expect })
  }

  /** close commits what is queued, waits for its sync, and closes the log's handle. */
  async close(): Promise<void> {
    await this.#commits.drain()
    await (await this.#wal?.catch(() => undefined))?.close()
    this.#wal = undefined
  }
}
