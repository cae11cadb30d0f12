import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { expiryCounts, parseDuration } from '../../../src/registry/expiry.js'
import type { NewIssuance } from '../../../src/registry/registry.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'

const issuance = (identity: string, serialNumber: string, at: number, days = 1): NewIssuance => ({
  identity,
  serialNumber,
  notBefore: new Date(at),
  notAfter: new Date(at + days * 86_400_000),
  keySource: 'device',
  issuer: 'local-ca',
  sha256Fingerprint: serialNumber.repeat(2),
  issuedAt: new Date(at),
})

const tempFile = async (): Promise<string> =>
  join(await mkdtemp(join(tmpdir(), 'mrb-registry-')), 'registry.sqlite')

describe('registry lifecycle', () => {
  it('revoke keeps the first date and reason; revoked lists them oldest first; unknown serials are false', async () => {
    const registry = new SqliteRegistry(await tempFile())
    await registry.record(issuance('d1', 'aa', 1_000))
    await registry.record(issuance('d2', 'bb', 2_000))
    expect(await registry.revoke('bb', { at: new Date(5_000), reason: 'keyCompromise' })).toBe(true)
    expect(await registry.revoke('aa', { at: new Date(6_000), reason: 'cessationOfOperation' })).toBe(true)
    expect(await registry.revoke('bb', { at: new Date(9_000), reason: 'unspecified' })).toBe(true)
    expect(await registry.revoke('cc', { at: new Date(9_000), reason: 'unspecified' })).toBe(false)
    const revoked = await registry.revoked()
    expect(revoked.map((r) => [r.serialNumber, r.revokedAt?.getTime(), r.revocationReason])).toEqual([
      ['bb', 5_000, 'keyCompromise'],
      ['aa', 6_000, 'cessationOfOperation'],
    ])
    // a later issuance supersedes only active certificates: a revoked one stays revoked
    await registry.record(issuance('d1', 'dd', 7_000))
    expect((await registry.certificate('aa'))?.state).toBe('revoked')
    await registry.close()
  })

  it('reset records the time on the identity; an unknown identity is false', async () => {
    const registry = new SqliteRegistry(await tempFile())
    await registry.record(issuance('d1', 'aa', 1_000))
    expect(await registry.reset('d1', new Date(3_000))).toBe(true)
    expect(await registry.reset('nobody', new Date(3_000))).toBe(false)
    expect((await registry.device('d1'))?.resetAt?.getTime()).toBe(3_000)
    await registry.close()
  })

  it('opens a schema-1 registry and migrates it, keeping its rows', async () => {
    const file = await tempFile()
    const old = new Database(file)
    old.exec(`
      CREATE TABLE devices (identity TEXT PRIMARY KEY, owner TEXT, first_issued_at INTEGER NOT NULL,
        last_issued_at INTEGER NOT NULL);
      CREATE TABLE certificates (serial TEXT PRIMARY KEY, identity TEXT NOT NULL REFERENCES devices(identity),
        not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, key_source TEXT NOT NULL, issuer TEXT NOT NULL,
        fingerprint TEXT NOT NULL, issued_at INTEGER NOT NULL, registered_by TEXT, request_id TEXT,
        state TEXT NOT NULL, superseded_by TEXT);
      INSERT INTO devices VALUES ('d1', NULL, 1000, 1000);
      INSERT INTO certificates VALUES ('aa', 'd1', 1000, 90000000, 'device', 'local-ca', 'ff', 1000, NULL, NULL,
        'active', NULL);
      PRAGMA user_version = 1;`)
    old.close()
    const registry = new SqliteRegistry(file)
    expect((await registry.certificate('aa'))?.state).toBe('active')
    expect(await registry.revoke('aa', { at: new Date(2_000), reason: 'superseded' })).toBe(true)
    expect(await registry.reset('d1', new Date(3_000))).toBe(true)
    // schema 3: the request hash is stored with a certificate
    await registry.record({ ...issuance('d1', 'bb', 4_000), requestHash: 'f'.repeat(64) })
    expect((await registry.certificate('bb'))?.requestHash).toBe('f'.repeat(64))
    expect((await registry.certificate('aa'))?.requestHash).toBeUndefined()
    await registry.close()
  })

  it('counts identities by the state of their newest certificate', async () => {
    const registry = new SqliteRegistry(await tempFile())
    const now = 100 * 86_400_000
    await registry.record(issuance('long', 'a1', now, 30))
    await registry.record(issuance('soon', 'b1', now - 86_400_000, 3))
    await registry.record(issuance('gone', 'c1', now - 10 * 86_400_000, 1))
    await registry.record(issuance('bad', 'd1', now, 30))
    await registry.revoke('d1', { at: new Date(now), reason: 'keyCompromise' })
    const counts = expiryCounts(await registry.list(), new Date(now), parseDuration('7d') ?? 0)
    expect(counts).toEqual({ active: 1, expiring: 1, expired: 1, revoked: 1, pending: 0 })
    expect(parseDuration('12h')).toBe(43_200_000)
    expect(parseDuration('7 days')).toBeUndefined()
    await registry.close()
  })
})
