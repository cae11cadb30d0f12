import { Redis } from 'ioredis'
import pg from 'pg'

/** Counts is how many times each command or statement ran: name → calls. */
export type Counts = Record<string, number>

/** difference subtracts a snapshot from a later one, keeping what grew. */
export function difference(after: Counts, before: Counts): Counts {
  const out: Counts = {}
  for (const [name, calls] of Object.entries(after)) {
    const grew = calls - (before[name] ?? 0)
    if (grew > 0) out[name] = grew
  }
  return out
}

/** WireCount is what a measured phase sent one server: in all and per registration, with the most frequent. */
export interface WireCount {
  readonly perRegistration: number
  /** The most frequent commands or statements, each per registration, most frequent first. */
  readonly top: { readonly name: string; readonly perRegistration: number }[]
}

const round = (n: number) => Math.round(n * 100) / 100

/** perRegistration turns counts over a phase into a WireCount for `registrations`. */
export function perRegistration(counts: Counts, registrations: number, top = 8): WireCount {
  const n = Math.max(1, registrations)
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  return {
    perRegistration: round(total / n),
    top: Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, calls]) => ({ name, perRegistration: round(calls / n) })),
  }
}

/**
 * redisCommandStats reads Redis' own per-command call counters (INFO commandstats) through a connection of its
 * own. Its INFO calls are left out, so the difference of two snapshots is what the clients under test sent.
 */
export function redisCommandStats(url: string): { snapshot(): Promise<Counts>; close(): void } {
  const admin = new Redis(url, { enableReadyCheck: false, lazyConnect: false })
  return {
    async snapshot() {
      const counts: Counts = {}
      for (const line of String(await admin.info('commandstats')).split('\n')) {
        // cmdstat_evalsha:calls=12,usec=34,...
        const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
        if (match && match[1] !== 'info') counts[match[1] as string] = Number(match[2])
      }
      return counts
    },
    close: () => admin.disconnect(),
  }
}

/**
 * postgresStatementStats reads pg_stat_statements (the server must preload it): calls per normalised statement,
 * every statement a client ran (BEGIN and COMMIT included: track_utility is on by default) but its own. With the
 * pg driver each statement is one round trip, so their total is the round trips the clients made.
 * `commits` is the database's committed transactions (pg_stat_database.xact_commit: an autocommit statement is
 * one, a BEGIN ... COMMIT block one, autovacuum's too). A backend adds its transactions to that counter at most
 * once a second, or after 10 s idle, or when it exits: read it once the clients have been idle for 11 s
 * (`idleFlush`), or have disconnected (`clientsGone`). This connection's own few autocommit queries are in it.
 */
export async function postgresStatementStats(url: string): Promise<{
  snapshot(): Promise<Counts>
  commits(): Promise<number>
  clientsGone(timeoutMs?: number): Promise<void>
  close(): Promise<void>
}> {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
  return {
    async snapshot() {
      const { rows } = await admin.query<{ query: string; calls: string }>(
        "SELECT query, sum(calls)::text AS calls FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' GROUP BY query",
      )
      const counts: Counts = {}
      for (const r of rows) counts[r.query.replace(/\s+/g, ' ').trim()] = Number(r.calls)
      return counts
    },
    async commits() {
      const { rows } = await admin.query<{ n: string }>(
        'SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()',
      )
      return Number(rows[0]?.n ?? 0)
    },
    async clientsGone(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const { rows } = await admin.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        if (Number(rows[0]?.n) === 0) return
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    close: () => admin.end(),
  }
}
