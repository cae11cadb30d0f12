import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'

async function fresh(): Promise<{ file: string; registry: SqliteRegistry }> {
  const file = join(await mkdtemp(join(tmpdir(), 'mrb-registry-')), 'state', 'registry.sqlite')
  return { file, registry: new SqliteRegistry(file) }
}

describe('SqliteRegistry', () => {
  it('records issuances durably: a new connection reads them back, and the file is private', async () => {
    const { file, registry } = await fresh()
    await registry.record(issuance('sensor-1', 'aa01', 1_000, 'gateway-1'))
    await registry.close()
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const reader = new SqliteRegistry(file, { readonly: true })
    const device = await reader.device('sensor-1')
    await reader.close()
    expect(device).toMatchObject({ identity: 'sensor-1', owner: 'gateway-1' })
    expect(device?.certificates).toEqual([
      { ...issuance('sensor-1', 'aa01', 1_000, 'gateway-1'), state: 'active', supersededBy: undefined },
    ])
  })

  it('a newer certificate supersedes the older ones of the identity, naming its serial', async () => {
    const { registry } = await fresh()
    await registry.record(issuance('device-1', 'aa01', 1_000))
    await registry.record(issuance('device-1', 'aa02', 2_000))
    await registry.record(issuance('device-2', 'bb01', 1_500))
    expect(await registry.certificate('aa01')).toMatchObject({ state: 'superseded', supersededBy: 'aa02' })
    expect(await registry.certificate('aa02')).toMatchObject({ state: 'active' })
    expect((await registry.device('device-1'))?.certificates.map((c) => c.serialNumber)).toEqual([
      'aa02',
      'aa01',
    ])
    expect(await registry.list()).toMatchObject([
      { identity: 'device-1', serialNumber: 'aa02', state: 'active' },
      { identity: 'device-2', serialNumber: 'bb01' },
    ])
    expect(await registry.setState('aa02', 'revoked')).toBe(true)
    expect(await registry.setState('ffff', 'revoked')).toBe(false)
    expect(await registry.certificate('aa02')).toMatchObject({ state: 'revoked' })
    await registry.close()
  })

  it('keeps the owning gateway through the device renewing itself; a transfer changes it; registering itself clears it', async () => {
    const { registry } = await fresh()
    await registry.record(issuance('sensor-1', 'aa01', 1_000, 'gateway-a'))
    await registry.record(issuance('sensor-2', 'aa02', 1_000, 'gateway-a'))
    expect(await registry.countOwned('gateway-a')).toBe(2)
    // the device renews itself with the operational certificate its gateway gave it: still gateway-a's
    await registry.record({ ...issuance('sensor-1', 'aa03', 2_000), event: 'renewed' })
    expect(await registry.ownerOf('sensor-1')).toBe('gateway-a')
    await registry.record({ ...issuance('sensor-1', 'aa04', 3_000, 'gateway-b'), event: 'renewed' })
    expect(await registry.ownerOf('sensor-1')).toBe('gateway-b')
    expect(await registry.countOwned('gateway-a')).toBe(1)
    expect((await registry.list({ owner: 'gateway-b' })).map((d) => d.identity)).toEqual(['sensor-1'])
    // the device registers itself with its factory certificate: it belongs to no gateway any more
    await registry.record({ ...issuance('sensor-1', 'aa05', 4_000), event: 're-registered' })
    expect(await registry.ownerOf('sensor-1')).toBeUndefined()
    expect((await registry.certificate('aa05'))?.event).toBe('re-registered')
    expect(await registry.ownerOf('unknown')).toBeUndefined()
    await registry.close()
  })

  it('records nothing half-way: a duplicate serial leaves the registry as it was', async () => {
    const { registry } = await fresh()
    await registry.record(issuance('sensor-1', 'aa01', 1_000, 'gateway-a'))
    await expect(registry.record(issuance('sensor-2', 'aa01', 2_000, 'gateway-b'))).rejects.toThrow(/UNIQUE/)
    expect(await registry.device('sensor-2')).toBeUndefined()
    expect(await registry.certificate('aa01')).toMatchObject({ identity: 'sensor-1', state: 'active' })
    await registry.close()
  })

  it('commits records of one turn together, and one bad record does not fail the others', async () => {
    const { registry } = await fresh()
    await registry.record(issuance('sensor-1', 'aa01', 1_000))
    const results = await Promise.allSettled([
      registry.record(issuance('sensor-2', 'bb01', 2_000)),
      registry.record(issuance('sensor-3', 'aa01', 2_000)),
      registry.record(issuance('sensor-4', 'cc01', 2_000)),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((await registry.list()).map((d) => d.identity).sort()).toEqual([
      'sensor-1',
      'sensor-2',
      'sensor-4',
    ])
    await registry.close()
  })

  it('refuses to open a registry written by a newer bridge', async () => {
    const { file, registry } = await fresh()
    await registry.close()
    const Database = (await import('better-sqlite3')).default
    const db = new Database(file)
    db.pragma('user_version = 99')
    db.close()
    expect(() => new SqliteRegistry(file)).toThrow(/schema version 99/)
  })
})
