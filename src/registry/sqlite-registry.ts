import { chmodSync, mkdirSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import Database, { type Statement } from 'better-sqlite3'
import type { ExpiryState } from './expiry-state.js'
import { GroupCommit } from './group-commit.js'
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
import {
  type CertificateRow,
  type DeviceRow,
  keepsOwner,
  MIGRATIONS,
  optional,
  SCHEMA,
  SCHEMA_VERSION,
  toIssuance,
} from './sqlite-rows.js'

/**
 * SqliteRegistry is the embedded registry: one SQLite file (mode 0600) in WAL mode. A record is on disk when
 * `record` resolves: records of one event-loop turn are committed in one transaction and the write-ahead log is
 * then fdatasync'ed in the thread pool (what synchronous=FULL does, without blocking the event loop).
 */
export class SqliteRegistry implements Registry {
  readonly #db: Database.Database
  readonly #statements = new Map<string, Statement>()
  readonly #insertDevice: Database.Statement
  readonly #supersede: Database.Statement
  readonly #insertCertificate: Database.Statement
  readonly #record: (issuance: NewIssuance) => void
  readonly #commits: GroupCommit<NewIssuance>
  #wal: Promise<FileHandle> | undefined

  /** SqliteRegistry opens (creating if needed) the registry file; `readonly` for tools that only read. */
  constructor(file: string, options: { readonly?: boolean } = {}) {
    if (!options.readonly) mkdirSync(dirname(file), { recursive: true })
    this.#db = new Database(file, {
      readonly: options.readonly === true,
      fileMustExist: options.readonly === true,
    })
    if (!options.readonly) {
      chmodSync(file, 0o600)
      this.#db.pragma('journal_mode = WAL')
      this.#db.pragma('synchronous = NORMAL')
      this.#db.pragma('foreign_keys = ON')
      const version = this.#db.pragma('user_version', { simple: true }) as number
      if (version > SCHEMA_VERSION) {
        throw new Error(`registry ${file} has schema version ${version}; this bridge knows ${SCHEMA_VERSION}`)
      }
      this.#migrate(version)
    }
    this.#insertDevice = this.#prepared(`
      INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES (@identity, @owner, @at, @at)
      ON CONFLICT (identity) DO UPDATE SET owner = CASE WHEN @keepOwner THEN owner ELSE @owner END,
        last_issued_at = @at`)
    this.#supersede = this.#prepared(
      `UPDATE certificates SET state = 'superseded', superseded_by = @serial WHERE identity = @identity AND state = 'active'`,
    )
    this.#insertCertificate = this.#prepared(`
      INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
        issued_at, registered_by, request_id, request_hash, event, state)
      VALUES (@serial, @identity, @notBefore, @notAfter, @keySource, @issuer, @fingerprint, @at, @registeredBy,
        @requestId, @requestHash, @event, 'active')`)
    this.#record = this.#db.transaction((i: NewIssuance) => {
      const at = i.issuedAt.getTime()
      this.#insertDevice.run({
        identity: i.identity,
        owner: i.registeredBy ?? null,
        keepOwner: keepsOwner(i) ? 1 : 0,
        at,
      })
      this.#supersede.run({ identity: i.identity, serial: i.serialNumber })
      this.#insertCertificate.run({
        serial: i.serialNumber,
        identity: i.identity,
        notBefore: i.notBefore.getTime(),
        notAfter: i.notAfter.getTime(),
        keySource: i.keySource,
        issuer: i.issuer,
        fingerprint: i.sha256Fingerprint,
        at,
        registeredBy: i.registeredBy ?? null,
        requestId: i.requestId ?? null,
        requestHash: i.requestHash ?? null,
        event: i.event ?? null,
      })
    })
    const recordAll = this.#db.transaction((all: readonly NewIssuance[]) => {
      for (const i of all) this.#record(i)
    })
    this.#commits = new GroupCommit({
      commitAll: recordAll,
      commitOne: this.#record,
      // synchronous=NORMAL writes the log without fsync; fdatasync in the thread pool makes it durable
      sync: async () => {
        this.#wal ??= open(`${file}-wal`, 'r+')
        await (await this.#wal).datasync()
      },
    })
  }

  /** #migrate creates the schema, or brings an older one up to date, in one transaction. */
  #migrate(version: number): void {
    this.#db.transaction(() => {
      const exists = this.#prepared("SELECT 1 FROM sqlite_master WHERE name = 'devices'").get()
      if (exists && version > 0) for (const step of MIGRATIONS.slice(version)) this.#db.exec(step)
      this.#db.exec(SCHEMA)
      this.#db.pragma(`user_version = ${SCHEMA_VERSION}`)
    })()
  }

  /** record stores an issuance; see Registry.record. */
  record(issuance: NewIssuance): Promise<void> {
    return this.#commits.add(issuance)
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
      'SELECT * FROM certificates WHERE identity = ? ORDER BY issued_at DESC, rowid DESC LIMIT ?',
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
          SELECT rowid FROM certificates WHERE identity = d.identity ORDER BY issued_at DESC, rowid DESC LIMIT 1)
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

  /** close closes the database file. */
  async close(): Promise<void> {
    if (!this.#db.open) return
    await this.#commits.drain()
    await (await this.#wal?.catch(() => undefined))?.close()
    this.#wal = undefined
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
          SELECT rowid FROM certificates WHERE identity = d.identity ORDER BY issued_at DESC, rowid DESC LIMIT 1)`).get(
      { now: now.getTime(), soon: now.getTime() + withinMs },
    ) as Record<ExpiryState, number>
    return { active: row.active, expiring: row.expiring, expired: row.expired, revoked: row.revoked }
  }
}
