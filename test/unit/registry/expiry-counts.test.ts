import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { expiryCounts } from '../../../src/registry/expiry.js'
import { PostgresRegistry } from '../../../src/registry/postgres-registry.js'
import type { NewIssuance, Registry } from '../../../src/registry/registry.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'
import { postgresForSuite } from '../../support/postgres.js'

const postgres = postgresForSuite()

const DAY = 86_400_000
const NOW = 100 * DAY
const WITHIN = 7 * DAY
/** cert: issued at `at`, expiring at NOW + `left`. */
const cert = (identity: string, serial: string, at: number, left: number): NewIssuance => ({
  ...issuance(identity, serial, at),
  notAfter: new Date(NOW + left),
})

/** script puts one identity in every corner of the rule: boundaries, the newest certificate, ties. */
async function script(r: Registry): Promise<void> {
  await r.record(cert('active', 'a1', 1_000, 30 * DAY))
  await r.record(cert('expiring-at-the-edge', 'e1', 1_000, WITHIN)) // exactly 7 days left: expiring
  await r.record(cert('expiring', 'e2', 1_000, 1))
  await r.record(cert('expired-at-the-edge', 'x1', 1_000, 0)) // notAfter == now: expired
  await r.record(cert('expired', 'x2', 1_000, -DAY))
  await r.record(cert('revoked', 'r1', 1_000, 30 * DAY))
  await r.revoke('r1', { at: new Date(2_000), reason: 'keyCompromise' })
  // an older certificate revoked, the newest active: active
  await r.record(cert('renewed', 'n1', 1_000, 30 * DAY))
  await r.revoke('n1', { at: new Date(1_500), reason: 'superseded' })
  await r.record(cert('renewed', 'n2', 2_000, 30 * DAY))
  // two certificates issued in the same millisecond: the one recorded last is the newest
  await r.record(cert('tie', 't1', 3_000, -DAY))
  await r.record(cert('tie', 't2', 3_000, 30 * DAY))
  // a newest certificate set to superseded by hand: counted by its time, not as revoked
  await r.record(cert('superseded', 's1', 1_000, 20 * DAY))
  await r.setState('s1', 'superseded')
  // an AWS create call's certificate waiting for RegisterThing (even one past its time): pending
  await r.record({ ...cert('pending', 'p1', 1_000, -DAY), pending: true })
}

describe('Registry.expiryCounts: one aggregate query, the same rule as expiryStateOf', () => {
  it('SQLite and PostgreSQL count what listing every device and classifying it in the process counts', async () => {
    const sqlite = new SqliteRegistry(join(await mkdtemp(join(tmpdir(), 'mrb-counts-')), 'registry.sqlite'))
    const pg = await PostgresRegistry.open(postgres.url)
    const expected = { active: 4, expiring: 2, expired: 2, pending: 1, revoked: 1 }
    for (const r of [sqlite, pg]) {
      await script(r)
      expect(expiryCounts(await r.list(), new Date(NOW), WITHIN)).toEqual(expected)
      expect(await r.expiryCounts(new Date(NOW), WITHIN)).toEqual(expected)
    }
    // an empty registry: every state, at zero
    const empty = new SqliteRegistry(join(await mkdtemp(join(tmpdir(), 'mrb-counts-')), 'registry.sqlite'))
    expect(await empty.expiryCounts(new Date(NOW), WITHIN)).toEqual({
      active: 0,
      expiring: 0,
      expired: 0,
      pending: 0,
      revoked: 0,
    })
    await Promise.all([sqlite.close(), pg.close(), empty.close()])
  })
})
