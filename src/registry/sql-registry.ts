import type { CertificateState, DeviceRecord, IssuanceRecord, Provisioning, Revocation } from './registry.js'
import { type CertificateRow, type DeviceRow, newestFirst, optional, toDevice, toIssuance } from './rows.js'

/**
 * SqlRegistry holds the reads and updates that SQLite and PostgreSQL run in the same SQL (`?` placeholders).
 * Each store runs the statements and keeps its own `record`, `list` and `expiryCounts` (locking, query plans).
 */
export abstract class SqlRegistry {
  /**
   * @param order the column of commit order: SQLite's rowid, PostgreSQL's id
   * @param noLimit the LIMIT that means none: -1 in SQLite, NULL in PostgreSQL
   */
  constructor(
    private readonly order: 'rowid' | 'id',
    private readonly noLimit: -1 | null,
  ) {}

  /** rows runs a query and returns its rows. */
  protected abstract rows<R>(sql: string, values: unknown[]): Promise<R[]>

  /** changes runs an update and returns how many rows it changed. */
  protected abstract changes(sql: string, values: unknown[]): Promise<number>

  async ownerOf(identity: string): Promise<string | undefined> {
    const [row] = await this.rows<DeviceRow>('SELECT owner FROM devices WHERE identity = ?', [identity])
    return optional(row?.owner)
  }

  async countOwned(gateway: string): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM devices WHERE owner = ?'
    const [row] = await this.rows<{ n: number | string }>(sql, [gateway])
    return Number(row?.n ?? 0)
  }

  async device(identity: string, options: { certificates?: number } = {}): Promise<DeviceRecord | undefined> {
    const [row] = await this.rows<DeviceRow>('SELECT * FROM devices WHERE identity = ?', [identity])
    if (!row) return undefined
    const certificates = await this.rows<CertificateRow>(
      `SELECT * FROM certificates WHERE identity = ? ${newestFirst(this.order)} LIMIT ?`,
      [identity, options.certificates ?? this.noLimit],
    )
    return toDevice(row, certificates)
  }

  async certificate(serialNumber: string): Promise<IssuanceRecord | undefined> {
    const [row] = await this.rows<CertificateRow>('SELECT * FROM certificates WHERE serial = ?', [
      serialNumber,
    ])
    return row ? toIssuance(row) : undefined
  }

  async setState(serialNumber: string, state: CertificateState): Promise<boolean> {
    return (
      (await this.changes('UPDATE certificates SET state = ? WHERE serial = ?', [state, serialNumber])) > 0
    )
  }

  async revoke(serialNumber: string, revocation: Revocation): Promise<boolean> {
    const changed = await this.changes(
      `UPDATE certificates SET state = 'revoked', revoked_at = coalesce(revoked_at, ?),
         revocation_reason = coalesce(revocation_reason, ?) WHERE serial = ?`,
      [revocation.at.getTime(), revocation.reason, serialNumber],
    )
    return changed > 0
  }

  async revoked(): Promise<IssuanceRecord[]> {
    const rows = await this.rows<CertificateRow>(
      `SELECT * FROM certificates WHERE state = 'revoked' ORDER BY revoked_at NULLS FIRST, ${this.order}`,
      [],
    )
    return rows.map(toIssuance)
  }

  async setOwnershipToken(serial: string, tokenSha256: string, expiresAt: Date, now: Date): Promise<boolean> {
    const sql = `UPDATE certificates SET token_sha256 = ?, token_expires_at = ?
      WHERE serial = ? AND state = 'pending' AND (token_expires_at IS NULL OR token_expires_at > ?)`
    return (await this.changes(sql, [tokenSha256, expiresAt.getTime(), serial, now.getTime()])) > 0
  }

  async byOwnershipToken(tokenSha256: string): Promise<IssuanceRecord | undefined> {
    const sql = 'SELECT * FROM certificates WHERE token_sha256 = ?'
    const [row] = await this.rows<CertificateRow>(sql, [tokenSha256])
    return row ? toIssuance(row) : undefined
  }

  async activate(serial: string, tokenSha256: string, now: Date, p: Provisioning): Promise<boolean> {
    const changed = await this.changes(
      `UPDATE certificates SET state = 'active', template_name = ?, thing_name = ?, provision_hash = ?,
         device_configuration = ?
       WHERE serial = ? AND state = 'pending' AND token_sha256 = ? AND token_expires_at > ?`,
      [
        p.templateName,
        p.thingName,
        p.provisionHash,
        JSON.stringify(p.deviceConfiguration),
        serial,
        tokenSha256,
        now.getTime(),
      ],
    )
    return changed > 0
  }

  async expirePending(now: Date, lifetimeMs: number): Promise<number> {
    return this.changes(
      `UPDATE certificates SET state = 'revoked', revoked_at = ?, revocation_reason = 'cessationOfOperation'
       WHERE state = 'pending' AND (token_expires_at <= ? OR (token_expires_at IS NULL AND issued_at <= ?))`,
      [now.getTime(), now.getTime(), now.getTime() - lifetimeMs],
    )
  }

  async held(): Promise<IssuanceRecord[]> {
    const rows = await this.rows<CertificateRow>(
      `SELECT * FROM certificates WHERE state = 'pending' ORDER BY ${this.order}`,
      [],
    )
    return rows.map(toIssuance)
  }

  async reset(identity: string, at: Date): Promise<boolean> {
    return (
      (await this.changes('UPDATE devices SET reset_at = ? WHERE identity = ?', [at.getTime(), identity])) > 0
    )
  }

  async committedSince(writer: string, since: Date): Promise<IssuanceRecord[]> {
    const rows = await this.rows<CertificateRow>(
      `SELECT * FROM certificates WHERE writer = ? AND issued_at >= ? ORDER BY ${this.order}`,
      [writer, since.getTime()],
    )
    return rows.map(toIssuance)
  }
}
