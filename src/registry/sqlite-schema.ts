import { chmodSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { tables } from './rows.js'

/** SCHEMA_VERSION is the registry schema this bridge writes (PRAGMA user_version). */
const SCHEMA_VERSION = 4

const SCHEMA = `${tables('INTEGER')}
CREATE INDEX IF NOT EXISTS certificates_writer ON certificates(writer, issued_at);`

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
