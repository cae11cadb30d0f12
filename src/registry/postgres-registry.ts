import pg from 'pg'
import { PoolGuard } from './postgres-guard.js'
import { createSchema } from './postgres-schema.js'
import {
  type DeviceSummary,
  type ExpiryState,
  type ListOptions,
  type NewIssuance,
  RecordConflict,
  type RecordExpectation,
  type Registry,
} from './registry.js'
import {
  certificateValues,
  INSERT_CERTIFICATE,
  keepsOwner,
  newestFirst,
  optional,
  type SummaryRow,
  toSummary,
} from './rows.js'
import { SqlRegistry } from './sql-registry.js'

type Row = Record<string, string | null>

const NEWEST_FIRST = newestFirst('id')

/** numbered turns the shared statements' `?` placeholders into PostgreSQL's `$1`, `$2`… */
const numbered = (sql: string): string => {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

/**
 * PostgresRegistry is the registry in PostgreSQL, shared by every worker and replica (state.postgres.url).
 * A record is one transaction: the identity's row is upserted first, which locks it, so two processes
 * recording for one identity at once supersede (and check their precondition) in order. It holds no key:
 * certificates' metadata only.
 */
export class PostgresRegistry extends SqlRegistry implements Registry {
  readonly #db: PoolGuard
  #syncs = 0

  private constructor(pool: pg.Pool) {
    super('id', null)
    this.#db = new PoolGuard(pool)
  }

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

  get syncs(): number {
    return this.#syncs
  }

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
        const newest = optional(rows[0]?.serial)
        if (newest !== expect.newest) throw new RecordConflict(i.identity, newest, expect.newest)
      }
      await client.query(
        `UPDATE certificates SET state = 'superseded', superseded_by = $2 WHERE identity = $1 AND state = 'active'`,
        [i.identity, i.serialNumber],
      )
      await client.query(numbered(INSERT_CERTIFICATE), certificateValues(i))
    })
    this.#syncs++
  }

  async list(options: ListOptions = {}): Promise<DeviceSummary[]> {
    const { rows } = await this.#db.query<SummaryRow>(
      `SELECT d.identity, d.owner, d.last_issued_at, c.serial, c.not_after, c.state
       FROM devices d JOIN LATERAL (
         SELECT serial, not_after, state FROM certificates WHERE identity = d.identity
         ${NEWEST_FIRST} LIMIT 1) c ON true
       WHERE ($1::text IS NULL OR d.owner = $1)
       ORDER BY d.last_issued_at DESC, d.identity LIMIT $2`,
      [options.owner ?? null, options.limit ?? null],
    )
    return rows.map(toSummary)
  }

  protected async rows<R>(sql: string, values: unknown[]): Promise<R[]> {
    return (await this.#db.query(numbered(sql), values)).rows as R[]
  }

  protected async changes(sql: string, values: unknown[]): Promise<number> {
    return (await this.#db.query(numbered(sql), values)).rowCount ?? 0
  }

  /** close ends the pool once its queries are done. */
  async close(): Promise<void> {
    await this.#db.close()
  }

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
