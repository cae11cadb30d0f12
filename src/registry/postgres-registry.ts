import pg from 'pg'
import { PoolGuard, transaction } from './postgres-guard.js'
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
  newestFirst,
  optional,
  recordSteps,
  SCHEMA_5_COLUMNS,
  SCHEMA_5_INDEXES,
  type SummaryRow,
  tables,
  toSummary,
} from './rows.js'
import { SqlRegistry } from './sql-registry.js'

type Row = Record<string, string | null>

const NEWEST_FIRST = newestFirst('id')

/** POSTGRES_SCHEMA creates the registry's tables, or adds the columns an older one lacks. */
const POSTGRES_SCHEMA = `${tables('BIGINT', '\n  id BIGSERIAL UNIQUE,')}
ALTER TABLE devices ADD COLUMN IF NOT EXISTS reset_at BIGINT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS revoked_at BIGINT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS revocation_reason TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS request_hash TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS event TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS certificate_pem TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS ca_pem TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS writer TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS supersedes TEXT;
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS endpoint_url TEXT;
CREATE INDEX IF NOT EXISTS certificates_writer ON certificates(writer, issued_at);
${SCHEMA_5_COLUMNS.map((c) => `ALTER TABLE certificates ADD COLUMN IF NOT EXISTS ${c} ${c.endsWith('_at') ? 'BIGINT' : 'TEXT'};`).join('\n')}
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'certificates_state_check'
      AND pg_get_constraintdef(oid) LIKE '%pending%') THEN
    ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_state_check;
    ALTER TABLE certificates ADD CONSTRAINT certificates_state_check
      CHECK (state IN ('active', 'superseded', 'revoked', 'pending'));
  END IF;
END $$;
DROP INDEX IF EXISTS certificates_active;
${SCHEMA_5_INDEXES}`

/** SCHEMA_LOCK serializes schema creation when replicas start together (pg_advisory_xact_lock). */
const SCHEMA_LOCK = 0x6d7262

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

  /** open connects, creates or updates the schema, and fails (the bridge does not start) when it cannot. */
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

  get syncs(): number {
    return this.#syncs
  }

  async record(i: NewIssuance, expect?: RecordExpectation): Promise<void> {
    await this.#db.transaction(async (client) => {
      const [upsertDevice, ...rest] = recordSteps(i)
      await client.query(numbered(upsertDevice[0]), upsertDevice[1])
      if (expect) {
        // the upsert locked the identity's row: a concurrent record of it waits, then reads this one's commit
        const { rows } = await client.query<Row>(
          `SELECT serial FROM certificates WHERE identity = $1 ${NEWEST_FIRST} LIMIT 1`,
          [i.identity],
        )
        const newest = optional(rows[0]?.serial)
        if (newest !== expect.newest) throw new RecordConflict(i.identity, newest, expect.newest)
      }
      for (const [sql, values] of rest) await client.query(numbered(sql), values)
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
         count(*) FILTER (WHERE c.state = 'pending') AS pending,
         count(*) FILTER (WHERE c.state NOT IN ('revoked', 'pending') AND c.not_after <= $1) AS expired,
         count(*) FILTER (WHERE c.state NOT IN ('revoked', 'pending') AND c.not_after > $1
           AND c.not_after <= $2) AS expiring,
         count(*) FILTER (WHERE c.state NOT IN ('revoked', 'pending') AND c.not_after > $2) AS active
       FROM (SELECT DISTINCT ON (identity) state, not_after FROM certificates
         ORDER BY identity, issued_at DESC, id DESC) c`,
      [now.getTime(), now.getTime() + withinMs],
    )
    const n = (state: ExpiryState): number => Number(rows[0]?.[state] ?? 0)
    return {
      active: n('active'),
      expiring: n('expiring'),
      expired: n('expired'),
      pending: n('pending'),
      revoked: n('revoked'),
    }
  }
}
