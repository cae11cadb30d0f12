import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PostgresRegistry } from '../../../src/registry/postgres-registry.js'
import { RecordConflict, type Registry } from '../../../src/registry/registry.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'
import { postgresForSuite } from '../../support/postgres.js'

const postgres = postgresForSuite()

const sqlite = async () => new SqliteRegistry(join(await mkdtemp(join(tmpdir(), 'mrb-fence-')), 'r.sqlite'))
const openers: [string, () => Promise<Registry>][] = [
  ['SQLite', sqlite],
  ['PostgreSQL', () => PostgresRegistry.open(postgres.url)],
]

/** conflictOf is what a rejected record was rejected with, when it was a RecordConflict. */
async function conflictOf(recording: Promise<void>): Promise<RecordConflict> {
  const err = await recording.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RecordConflict)
  return err as RecordConflict
}

describe.each(openers)('Registry.record with an expectation (%s)', (name, open) => {
  // one PostgreSQL database serves every test of this file: each test has identities of its own
  const id = (identity: string) => `${name}-${identity}`

  it('without an expectation records as before; a matching one (none, then a serial) records too', async () => {
    const r = await open()
    await r.record(issuance(id('free'), `${name}f1`, 1_000))
    await r.record(issuance(id('free'), `${name}f2`, 2_000))
    await r.record(issuance(id('fenced'), `${name}a1`, 1_000), { newest: undefined })
    await r.record(issuance(id('fenced'), `${name}a2`, 2_000), { newest: `${name}a1` })
    expect((await r.device(id('free')))?.certificates.map((c) => c.serialNumber)).toEqual([
      `${name}f2`,
      `${name}f1`,
    ])
    expect((await r.device(id('fenced')))?.certificates.map((c) => [c.serialNumber, c.state])).toEqual([
      [`${name}a2`, 'active'],
      [`${name}a1`, 'superseded'],
    ])
    await r.close()
  })

  it('a stale expectation writes nothing and rejects with RecordConflict naming what the registry holds', async () => {
    const r = await open()
    // an identity whose words a connection error's test would match: still a conflict, not "unavailable"
    const identity = id('connect-terminated-timeout')
    await r.record(issuance(identity, `${name}s1`, 1_000, 'gw-1'))
    const before = await r.device(identity)
    const syncs = r.syncs

    const noneExpected = await conflictOf(
      r.record(issuance(identity, `${name}s2`, 2_000, 'gw-2'), { newest: undefined }),
    )
    expect(noneExpected).toMatchObject({ identity, newest: `${name}s1` })
    const otherExpected = await conflictOf(
      r.record(issuance(identity, `${name}s3`, 3_000), { newest: `${name}nope` }),
    )
    expect(otherExpected).toMatchObject({ identity, newest: `${name}s1` })
    // nothing written: the same record (owner, times, the active certificate not superseded), no new serial
    expect(await r.device(identity)).toEqual(before)
    expect(await r.certificate(`${name}s2`)).toBeUndefined()
    expect(await r.certificate(`${name}s1`)).toMatchObject({ state: 'active', supersededBy: undefined })
    expect(r.syncs).toBe(syncs)

    // an identity the registry does not know, expected to have a certificate: not even its row is created
    const unknown = await conflictOf(
      r.record(issuance(id('unknown'), `${name}u1`, 1_000), { newest: `${name}s1` }),
    )
    expect(unknown).toMatchObject({ identity: id('unknown'), newest: undefined })
    expect(await r.device(id('unknown'))).toBeUndefined()
    await r.close()
  })

  it('the newest is what device() reads first: issue time, then the later record of one millisecond', async () => {
    const r = await open()
    await r.record(issuance(id('tie'), `${name}t1`, 5_000))
    await r.record(issuance(id('tie'), `${name}t2`, 5_000)) // same time: recorded later, so newer
    await r.record(issuance(id('tie'), `${name}t0`, 4_000)) // issued earlier, recorded last
    const newest = (await r.device(id('tie'), { certificates: 1 }))?.certificates[0]?.serialNumber
    expect(newest).toBe(`${name}t2`)
    await conflictOf(r.record(issuance(id('tie'), `${name}t3`, 6_000), { newest: `${name}t0` }))
    await r.record(issuance(id('tie'), `${name}t3`, 6_000), { newest })
    await r.close()
  })
})

describe('SQLite group commit with expectations', () => {
  it('two records of one identity in one turn expecting the same head: exactly one commits, the batch still syncs once', async () => {
    const r = await sqlite()
    await r.record(issuance('dup', 'h0', 1_000))
    await r.record(issuance('other', 'o0', 1_000))
    const syncs = r.syncs
    const results = await Promise.allSettled([
      r.record(issuance('dup', 'h1', 2_000), { newest: 'h0' }),
      r.record(issuance('other', 'o1', 2_000), { newest: 'o0' }),
      r.record(issuance('dup', 'h2', 2_000), { newest: 'h0' }),
      r.record(issuance('third', 'n1', 2_000), { newest: undefined }),
    ])
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    const rejected = results[2] as PromiseRejectedResult
    expect(rejected.reason).toBeInstanceOf(RecordConflict)
    expect(rejected.reason).toMatchObject({ identity: 'dup', newest: 'h1' })
    expect((await r.device('dup'))?.certificates.map((c) => [c.serialNumber, c.state])).toEqual([
      ['h1', 'active'],
      ['h0', 'superseded'],
    ])
    expect(await r.certificate('h2')).toBeUndefined()
    expect((await r.device('other'))?.certificates[0]?.serialNumber).toBe('o1')
    expect((await r.device('third'))?.certificates[0]?.serialNumber).toBe('n1')
    expect(r.syncs).toBe(syncs + 1)
    await r.close()
  })

  it('N records of one turn are made durable by one sync; a turn whose every record conflicts syncs none', async () => {
    const r = await sqlite()
    expect(r.syncs).toBe(0)
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        r.record(issuance(`d-${i}`, `s${i}`, 1_000), { newest: undefined }),
      ),
    )
    expect(r.syncs).toBe(1)
    const late = await Promise.allSettled([
      r.record(issuance('d-1', 'x1', 2_000), { newest: undefined }),
      r.record(issuance('d-2', 'x2', 2_000), { newest: undefined }),
    ])
    expect(late.map((x) => x.status)).toEqual(['rejected', 'rejected'])
    expect(r.syncs).toBe(1)
    await r.record(issuance('d-1', 'x1', 2_000))
    expect(r.syncs).toBe(2)
    await r.close()
  })
})

describe('PostgreSQL: two replicas recording for one identity at once', () => {
  it('with the same expectation exactly one commits; the other is told the winner', async () => {
    const [a, b] = await Promise.all([
      PostgresRegistry.open(postgres.url),
      PostgresRegistry.open(postgres.url),
    ])
    for (let round = 0; round < 10; round++) {
      const identity = `race-${round}`
      // odd rounds: an identity with a certificate; even ones: a first registration (the row does not exist)
      const head = round % 2 ? `race-${round}-0` : undefined
      if (head) await a.record(issuance(identity, head, 1_000))
      const results = await Promise.allSettled([
        a.record(issuance(identity, `race-${round}-a`, 2_000), { newest: head }),
        b.record(issuance(identity, `race-${round}-b`, 2_000), { newest: head }),
      ])
      const won = results.flatMap((x, i) => (x.status === 'fulfilled' ? [i ? 'b' : 'a'] : []))
      expect(won).toHaveLength(1)
      const lost = results.find((x) => x.status === 'rejected') as PromiseRejectedResult
      expect(lost.reason).toBeInstanceOf(RecordConflict)
      expect(lost.reason).toMatchObject({ identity, newest: `race-${round}-${won[0]}` })
      const device = await a.device(identity)
      expect(device?.certificates.map((c) => c.serialNumber)).toEqual(
        [`race-${round}-${won[0]}`, head].filter((s) => s !== undefined),
      )
      expect(device?.certificates.filter((c) => c.state === 'active')).toHaveLength(1)
    }
    // each committed record is one transaction: one WAL flush
    expect(a.syncs + b.syncs).toBe(10 + 5)
    await Promise.all([a.close(), b.close()])
  })
})
