import type pg from 'pg'
import { StateUnavailableError } from '../protocol/errors.js'
import { RecordConflict } from './registry.js'

/** PROBE_EVERY_MS is how often an idle registry checks that PostgreSQL answers (readiness). */
const PROBE_EVERY_MS = 1_000

/**
 * unreachable tells a lost or refused connection (socket errors, the driver's connection errors, SQLSTATE
 * classes 08 and 57: connection exceptions, server shutting down) from an error of the statement itself.
 */
function unreachable(err: unknown): boolean {
  if (err instanceof RecordConflict) return false // a failed precondition, whatever its message says
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code))
    return code.startsWith('08') || code.startsWith('57')
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true // ECONNREFUSED, ECONNRESET, ETIMEDOUT…
  // the driver's own: "Connection terminated unexpectedly", "timeout exceeded when trying to connect"
  return /connect|terminated|timeout/i.test((err as Error).message ?? '')
}

/**
 * PoolGuard runs the registry's statements on a pg pool and keeps its connection status: `available` is false
 * from a failed connection until a statement succeeds again (an idle registry probes every second). A lost
 * connection rejects with StateUnavailableError, which devices are told as ISSUER_UNAVAILABLE (retryable).
 */
export class PoolGuard {
  readonly #pool: pg.Pool
  readonly #probe: NodeJS.Timeout
  #available = true

  constructor(pool: pg.Pool) {
    this.#pool = pool
    this.#probe = setInterval(() => void this.query('SELECT 1').catch(() => {}), PROBE_EVERY_MS)
    this.#probe.unref()
  }

  /** available is false while PostgreSQL cannot be reached. */
  available(): boolean {
    return this.#available
  }

  /** query runs one statement. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.#guard(() => this.#pool.query<R>(text, values))
  }

  /** transaction runs `work` in one transaction (rolled back when it throws). */
  transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return this.#guard(() => transaction(this.#pool, work))
  }

  /** close stops probing and ends the pool. */
  async close(): Promise<void> {
    clearInterval(this.#probe)
    if (!this.#pool.ended) await this.#pool.end()
  }

  async #guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      const result = await run()
      this.#available = true
      return result
    } catch (err) {
      if (!unreachable(err)) throw err
      this.#available = false
      throw new StateUnavailableError('registry', { cause: err })
    }
  }
}

/** transaction runs `work` between BEGIN and COMMIT on one pooled client, ROLLBACK when it throws. */
export async function transaction(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<void>,
): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await work(client)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
