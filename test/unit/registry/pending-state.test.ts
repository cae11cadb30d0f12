import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { PostgresRegistry } from '../../../src/registry/postgres-registry.js'
import type { Provisioning, Registry } from '../../../src/registry/registry.js'
import { SCHEMA_5_COLUMNS, tables } from '../../../src/registry/rows.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'
import { postgresForSuite } from '../../support/postgres.js'

// Registry schema 5 (AWS fleet provisioning): the `pending` state, the ownership token's hash and expiry, what
// RegisterThing records; the same in SQLite and PostgreSQL, and a schema-4 store migrated with its rows kept.

const postgres = postgresForSuite()

/** Schema 4's tables: today's without schema 5's columns, with the old state CHECK and index. */
const schema4 = (time: 'INTEGER' | 'BIGINT', id = ''): string => {
  let sql = tables(time, id)
  for (const column of SCHEMA_5_COLUMNS) sql = sql.replace(new RegExp(`,\\n  ${column} \\w+`), '')
  expect(sql).not.toContain('token_sha256')
  return `${sql.replace(", 'pending'", '')}
CREATE INDEX IF NOT EXISTS certificates_active ON certificates(identity) WHERE state = 'active';`
}

const PROVISIONING: Provisioning = {
  templateName: 'T',
  thingName: 'thing-1',
  provisionHash: 'h1',
  deviceConfiguration: { a: 'b' },
}

const hour = 3_600_000

/** behaves checks schema 5's operations on a registry (with a schema-4 row `old-1` of identity d-0 in it). */
async function behaves(registry: Registry): Promise<void> {
  expect((await registry.certificate('old-1'))?.state).toBe('active')
  const now = Date.now()
  await registry.record({ ...issuance('d-1', 'p-1', now), pending: true })
  expect((await registry.certificate('p-1'))?.state).toBe('pending')
  expect((await registry.held()).map((c) => c.serialNumber)).toEqual(['p-1'])
  expect(await registry.setOwnershipToken('p-1', 'tok-1', new Date(now + hour), new Date(now))).toBe(true)
  expect(await registry.setOwnershipToken('old-1', 'tok-x', new Date(now + hour), new Date(now))).toBe(false) // not pending
  expect((await registry.byOwnershipToken('tok-1'))?.serialNumber).toBe('p-1')
  // a fresh token replaces the old one
  expect(await registry.setOwnershipToken('p-1', 'tok-2', new Date(now + hour), new Date(now))).toBe(true)
  expect(await registry.byOwnershipToken('tok-1')).toBeUndefined()
  // only with its token, unexpired, once
  expect(await registry.activate('p-1', 'tok-1', new Date(now), PROVISIONING)).toBe(false)
  expect(await registry.activate('p-1', 'tok-2', new Date(now + 2 * hour), PROVISIONING)).toBe(false)
  // an expired token is never revived by a new one
  expect(
    await registry.setOwnershipToken('p-1', 'tok-3', new Date(now + 3 * hour), new Date(now + 2 * hour)),
  ).toBe(false)
  expect(await registry.activate('p-1', 'tok-2', new Date(now), PROVISIONING)).toBe(true)
  expect(await registry.activate('p-1', 'tok-2', new Date(now), PROVISIONING)).toBe(false)
  expect(await registry.certificate('p-1')).toMatchObject({ state: 'active', provisioning: PROVISIONING })
  expect(await registry.held()).toEqual([])
  // a later issuance revokes a pending certificate (superseded), supersedes an active one
  await registry.record({ ...issuance('d-2', 'p-2', now), pending: true })
  await registry.record({ ...issuance('d-2', 'p-3', now + 1), pending: true })
  expect(await registry.certificate('p-2')).toMatchObject({
    state: 'revoked',
    revocationReason: 'superseded',
  })
  await registry.record(issuance('d-1', 'a-1', now + 1))
  expect((await registry.certificate('p-1'))?.state).toBe('superseded')
  // expiry: a token past its time, or none for the lifetime since issuance
  await registry.setOwnershipToken('p-3', 'tok-3', new Date(now - 1), new Date(now - 2))
  await registry.record({ ...issuance('d-3', 'p-4', now - 2 * hour), pending: true })
  await registry.record({ ...issuance('d-4', 'p-5', now), pending: true })
  expect(await registry.expirePending(new Date(now), hour)).toBe(2)
  for (const serial of ['p-3', 'p-4'])
    expect(await registry.certificate(serial)).toMatchObject({
      state: 'revoked',
      revocationReason: 'cessationOfOperation',
    })
  expect((await registry.held()).map((c) => c.serialNumber)).toEqual(['p-5'])
}

describe('registry schema 5: pending certificates and ownership tokens', () => {
  it('SQLite: a schema-4 registry is migrated in place (the table rebuilt for the new state), its rows kept', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'mrb-registry-')), 'registry.sqlite')
    const old = new Database(file)
    old.exec(schema4('INTEGER'))
    old.exec(`INSERT INTO devices (identity, owner, first_issued_at, last_issued_at) VALUES ('d-0', NULL, 1, 1);
      INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
        issued_at, state) VALUES ('old-1', 'd-0', 1, 90000000, 'device', 'local-ca', 'ff', 1, 'active');
      PRAGMA user_version = 4;`)
    expect(() => old.exec(`UPDATE certificates SET state = 'pending'`)).toThrow(/CHECK/)
    old.close()
    const registry = new SqliteRegistry(file)
    await behaves(registry)
    await registry.close()
    const reopened = new Database(file, { readonly: true })
    expect(reopened.pragma('user_version', { simple: true })).toBe(5)
    reopened.close()
  })

  it('PostgreSQL: a schema-4 registry gets the columns and the new state at open, its rows kept', async () => {
    const client = new pg.Client({ connectionString: postgres.url })
    await client.connect()
    await client.query(schema4('BIGINT', '\n  id BIGSERIAL UNIQUE,'))
    await client.query(`INSERT INTO devices (identity, owner, first_issued_at, last_issued_at)
      VALUES ('d-0', NULL, 1, 1);
      INSERT INTO certificates (serial, identity, not_before, not_after, key_source, issuer, fingerprint,
        issued_at, state) VALUES ('old-1', 'd-0', 1, 90000000, 'device', 'local-ca', 'ff', 1, 'active')`)
    await client.end()
    const registry = await PostgresRegistry.open(postgres.url)
    await behaves(registry)
    await registry.close()
    // opening again changes nothing (the schema statements are idempotent)
    const again = await PostgresRegistry.open(postgres.url)
    expect((await again.certificate('p-5'))?.state).toBe('pending')
    await again.close()
  })
})
