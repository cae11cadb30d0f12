import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { PostgresRegistry } from '../../../src/registry/postgres-registry.js'
import type { Registry } from '../../../src/registry/registry.js'
import { tables } from '../../../src/registry/rows.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'
import { postgresForSuite } from '../../support/postgres.js'

const postgres = postgresForSuite()

/** Schema 3's tables: today's without the endpoint column (schema 4 added it). */
const schema3 = (time: 'INTEGER' | 'BIGINT', id = ''): string => {
  const sql = tables(time, id)
  expect(sql).toContain('endpoint_url TEXT,\n')
  return sql.replace('endpoint_url TEXT,\n', '')
}

/** migrated checks a registry opened on a schema-3 store: old rows read back, new ones keep their endpoint. */
async function migrated(registry: Registry): Promise<void> {
  expect((await registry.certificate('old-1'))?.endpoint).toBeUndefined()
  await registry.record({ ...issuance('d-1', 'new-1', 5_000), endpoint: 'mqtts://eu-1.example:8883' })
  await registry.record(issuance('d-2', 'new-2', 6_000))
  expect((await registry.certificate('new-1'))?.endpoint).toBe('mqtts://eu-1.example:8883')
  expect((await registry.device('d-1', { certificates: 1 }))?.certificates[0]?.endpoint).toBe(
    'mqtts://eu-1.example:8883',
  )
  expect((await registry.certificate('new-2'))?.endpoint).toBeUndefined()
}

describe('the endpoint a registration hook assigned is recorded with its certificate (schema 4)', () => {
  it('SQLite: a schema-3 registry is migrated in place, its rows kept', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'mrb-registry-')), 'registry.sqlite')
    const old = new Database(file)
    old.exec(schema3('INTEGER'))
    old.exec(`INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES ('d-0', NULL, 1, 1);
      INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
        issued_at, state) VALUES ('old-1', 'd-0', 1, 90000000, 'device', 'local-ca', 'ff', 1, 'active');
      PRAGMA user_version = 3;`)
    old.close()
    const registry = new SqliteRegistry(file)
    await migrated(registry)
    await registry.close()
    const reopened = new Database(file, { readonly: true })
    expect(reopened.pragma('user_version', { simple: true })).toBe(5) // and on to schema 5
    reopened.close()
  })

  it('PostgreSQL: a schema-3 registry gets the column at open, its rows kept', async () => {
    const client = new pg.Client({ connectionString: postgres.url })
    await client.connect()
    await client.query(schema3('BIGINT', '\n  id BIGSERIAL UNIQUE,'))
    await client.query(`INSERT INTO devices (identity, owner, first_issued_at, last_issued_at)
      VALUES ('d-0', NULL, 1, 1);
      INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
        issued_at, state) VALUES ('old-1', 'd-0', 1, 90000000, 'device', 'local-ca', 'ff', 1, 'active')`)
    await client.end()
    const registry = await PostgresRegistry.open(postgres.url)
    await migrated(registry)
    await registry.close()
  })
})
