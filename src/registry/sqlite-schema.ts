import { chmodSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { SCHEMA_5_INDEXES, tables } from './rows.js'

/** V4_COLUMNS are the certificates columns of schema 4, copied as they are into schema 5's table. */
const V4_COLUMNS = `serial, identity, not_before, not_after, key_source, issuer, fingerprint, issued_at, registered_by,
  request_id, request_hash, event, certificate_pem, ca_pem, endpoint_url, writer, supersedes, state, superseded_by,
  revoked_at, revocation_reason`

/** SCHEMA_VERSION is the registry schema this bridge writes (PRAGMA user_version). */
const SCHEMA_VERSION = 5

const SCHEMA = `${tables('INTEGER')}
CREATE INDEX IF NOT EXISTS certificates_writer ON certificates(writer, issued_at);
DROP INDEX IF EXISTS certificates_active;
${SCHEMA_5_INDEXES}`

/** MIGRATIONS bring a registry of an older schema version (the index) to SCHEMA_VERSION, in order. */
const MIGRATIONS: readonly string[] = [
  '',
  `ALTER TABLE devices ADD COLUMN reset_at INTEGER;
   ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;
   ALTER TABLE certificates ADD COLUMN revocation_reason TEXT;`,
  `ALTER TABLE certificates ADD COLUMN request_hash TEXT;
   ALTER TABLE certificates ADD COLUMN event TEXT;
   ALTER TABLE certificates ADD COLUMN certificate_pem TEXT;
   ALTER TABLE certificates ADD COLUMN ca_pem TEXT;
   ALTER TABLE certificates ADD COLUMN writer TEXT;
   ALTER TABLE certificates ADD COLUMN supersedes TEXT;`,
  'ALTER TABLE certificates ADD COLUMN endpoint_url TEXT;',
  // schema 5 (AWS fleet provisioning): the state `pending` and the token's columns. SQLite cannot change a CHECK
  // constraint in place: the table is rebuilt, its rows copied in commit order (rowid: the order of `device`)
  `ALTER TABLE certificates RENAME TO certificates_v4;
   DROP INDEX IF EXISTS certificates_identity;
   DROP INDEX IF EXISTS certificates_active;
   DROP INDEX IF EXISTS certificates_writer;
   ${tables('INTEGER')}
   INSERT INTO certificates (${V4_COLUMNS}) SELECT ${V4_COLUMNS} FROM certificates_v4 ORDER BY rowid;
   DROP TABLE certificates_v4;`,
]

/**
 * openSqlite opens (creating if needed) the registry file: mode 0600, WAL, foreign keys, the schema created or
 * migrated in one transaction; `readonly` for tools that only read (the file must exist).
 */
export function openSqlite(file: string, readonly: boolean): Database.Database {
  if (!readonly) mkdirSync(dirname(file), { recursive: true })
  const db = new Database(file, { readonly, fileMustExist: readonly })
  if (readonly) return db
  chmodSync(file, 0o600)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    db.close()
    throw new Error(`registry ${file} has schema version ${version}; this bridge knows ${SCHEMA_VERSION}`)
  }
  // IMMEDIATE: workers opening a new registry at once take turns (a deferred transaction fails with BUSY)
  db.transaction(() => {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'devices'").get()
    if (exists && version > 0) for (const step of MIGRATIONS.slice(version)) db.exec(step)
    db.exec(SCHEMA)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
  return db
}
