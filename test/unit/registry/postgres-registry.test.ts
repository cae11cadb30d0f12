import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PostgresRegistry } from '../../../src/registry/postgres-registry.js'
import type { Registry } from '../../../src/registry/registry.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'
import { postgresForSuite } from '../../support/postgres.js'

const postgres = postgresForSuite()

/** everything reads back all a registry can tell, for comparing two implementations. */
async function everything(r: Registry) {
  return {
    devices: await Promise.all(['s-1', 's-2', 's-3', 'nobody'].map((i) => r.device(i))),
    newest: await Promise.all(['s-1', 's-3', 'nobody'].map((i) => r.device(i, { certificates: 1 }))),
    owners: await Promise.all(['s-1', 's-2', 's-3', 'nobody'].map((i) => r.ownerOf(i))),
    counts: await Promise.all(['gw-1', 'gw-2'].map((g) => r.countOwned(g))),
    certificate: await r.certificate('c2'),
    missing: await r.certificate('zz'),
    all: await r.list(),
    owned: await r.list({ owner: 'gw-1' }),
    limited: await r.list({ limit: 1 }),
    revoked: await r.revoked(),
  }
}

describe('PostgresRegistry', () => {
  it('tells exactly what the SQLite registry tells for the same issuances (differential)', async () => {
    const sqlite = new SqliteRegistry(join(await mkdtemp(join(tmpdir(), 'mrb-reg-')), 'registry.sqlite'))
    const pg = await PostgresRegistry.open(postgres.url)
    const script = [
      issuance('s-1', 'c1', 1_000),
      issuance('s-1', 'c2', 2_000),
      issuance('s-2', 'c3', 3_000, 'gw-1'),
      issuance('s-3', 'c4', 3_000, 'gw-1'),
      { ...issuance('s-3', 'c5', 4_000, 'gw-2'), requestHash: 'e'.repeat(64) },
    ]
    for (const r of [sqlite, pg]) {
      for (const i of script) await r.record(i)
      expect(await r.setState('c4', 'revoked')).toBe(true)
      expect(await r.setState('nope', 'revoked')).toBe(false)
      expect(await r.revoke('c2', { at: new Date(5_000), reason: 'keyCompromise' })).toBe(true)
      expect(await r.revoke('c2', { at: new Date(6_000), reason: 'superseded' })).toBe(true) // the first stays
      expect(await r.revoke('nope', { at: new Date(5_000), reason: 'unspecified' })).toBe(false)
      expect(await r.reset('s-2', new Date(7_000))).toBe(true)
      expect(await r.reset('nobody', new Date(7_000))).toBe(false)
    }
    const expected = await everything(sqlite)
    expect(expected.devices[0]?.certificates.map((c) => c.state)).toEqual(['revoked', 'superseded'])
    expect(expected.newest.map((d) => d?.certificates.map((c) => c.serialNumber))).toEqual([
      ['c2'],
      ['c5'],
      undefined,
    ])
    expect(expected.newest[1]?.certificates[0]?.requestHash).toBe('e'.repeat(64))
    expect(await everything(pg)).toEqual(expected)
    await sqlite.close()
    await pg.close()
  })

  it('two processes recording for one identity at once leave one active certificate', async () => {
    const [a, b] = await Promise.all([
      PostgresRegistry.open(postgres.url),
      PostgresRegistry.open(postgres.url),
    ])
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).record(issuance('race', `r${i}`, 10_000 + i))),
    )
    const device = await a.device('race')
    expect(device?.certificates).toHaveLength(20)
    expect(device?.certificates.filter((c) => c.state === 'active')).toHaveLength(1)
    await a.close()
    await b.close()
  })

  it('refuses to open when PostgreSQL cannot be reached', async () => {
    await expect(PostgresRegistry.open('postgres://postgres@127.0.0.1:1/postgres')).rejects.toThrow(
      /state.postgres.url: cannot open the registry/,
    )
  })
})
