import type pg from 'pg'
import { transaction } from './postgres-guard.js'
import { tables } from './rows.js'

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
CREATE INDEX IF NOT EXISTS certificates_writer ON certificates(writer, issued_at);
`

/** SCHEMA_LOCK serializes schema creation when replicas start together (pg_advisory_xact_lock). */
const SCHEMA_LOCK = 0x6d7262

/** createSchema creates the schema, or brings an older one up to date, one starting replica at a time. */
export function createSchema(pool: pg.Pool): Promise<void> {
  return transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK])
    await client.query(POSTGRES_SCHEMA)
  })
}
