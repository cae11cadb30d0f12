import type pg from 'pg'
import { transaction } from './postgres-guard.js'

/** POSTGRES_SCHEMA creates the registry's tables (the SQLite schema's twin; times are epoch milliseconds). */
const POSTGRES_SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  identity TEXT PRIMARY KEY,
  owner TEXT,
  first_issued_at BIGINT NOT NULL,
  last_issued_at BIGINT NOT NULL,
  reset_at BIGINT
);
CREATE INDEX IF NOT EXISTS devices_owner ON devices(owner);
CREATE TABLE IF NOT EXISTS certificates (
  id BIGSERIAL UNIQUE,
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL REFERENCES devices(identity),
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  key_source TEXT NOT NULL CHECK (key_source IN ('device', 'bridge')),
  issuer TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  registered_by TEXT,
  request_id TEXT,
  request_hash TEXT,
  event TEXT,
  certificate_pem TEXT,
  ca_pem TEXT,
  writer TEXT,
  supersedes TEXT,
  state TEXT NOT NULL CHECK (state IN ('active', 'superseded', 'revoked')),
  superseded_by TEXT,
  revoked_at BIGINT,
  revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity, issued_at);
-- an issuance supersedes the identity's active certificate: found without reading its history
CREATE INDEX IF NOT EXISTS certificates_active ON certificates(identity) WHERE state = 'active';
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
