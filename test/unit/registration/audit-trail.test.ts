import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../src/logger.js'
import { auditRecordOf } from '../../../src/registration/audit-log.js'
import { AuditTrail, writerId } from '../../../src/registration/audit-trail.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'

const quiet = createLogger('silent', new Writable({ write: (_c, _e, done) => done() }))

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-trail-'))
  const registry = new SqliteRegistry(join(dir, 'registry.sqlite'))
  return { dir, registry, auditPath: join(dir, 'audit.log') }
}

const lines = async (path: string): Promise<{ serialNumber: string }[]> =>
  (await readFile(path, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { serialNumber: string })

describe('the audit trail is written from committed records', () => {
  it('complete writes what this writer committed and the log lacks, in commit order, once', async () => {
    const { registry, auditPath } = await setup()
    const now = Date.now()
    const mine = [1, 2, 3, 4].map((n) => ({ ...issuance(`d${n}`, `a${n}`, now + n), writer: 'w1' }))
    for (const r of mine) await registry.record(r)
    await registry.record({ ...issuance('other', 'b1', now + 5), writer: 'w2' })
    // the process died after committing a3 and a4, before their lines: the log has a1 and a2
    await writeFile(
      auditPath,
      `${mine
        .slice(0, 2)
        .map((r) => JSON.stringify(auditRecordOf(r)))
        .join('\n')}\n`,
    )
    const trail = new AuditTrail(auditPath, 'w1', quiet)
    expect(await trail.complete(registry, 60_000)).toBe(2)
    expect(await trail.complete(registry, 60_000)).toBe(0)
    await trail.close()
    expect((await lines(auditPath)).map((l) => l.serialNumber)).toEqual(['a1', 'a2', 'a3', 'a4'])
    await registry.close()
  })

  it('an empty or missing log is completed within the window', async () => {
    const { registry, auditPath } = await setup()
    const now = Date.now()
    await registry.record({ ...issuance('old', 'c0', now - 120_000), writer: 'w1' })
    await registry.record({ ...issuance('new', 'c1', now), writer: 'w1' })
    const trail = new AuditTrail(auditPath, 'w1', quiet)
    expect(await trail.complete(registry, 60_000)).toBe(1)
    await trail.close()
    expect((await lines(auditPath)).map((l) => l.serialNumber)).toEqual(['c1'])
    await registry.close()
  })

  it('committed() appends the line of a committed record; writerId is made once per state directory', async () => {
    const { dir, auditPath } = await setup()
    const trail = new AuditTrail(auditPath, 'w1', quiet)
    trail.committed({ ...issuance('d', 'e1', Date.now()), writer: 'w1', requestHash: 'f'.repeat(64) })
    await trail.close()
    expect(await lines(auditPath)).toMatchObject([{ serialNumber: 'e1', requestHash: 'f'.repeat(64) }])
    const file = join(dir, 'writer-id')
    const [a, b] = await Promise.all([writerId(file), writerId(file)])
    expect(a).toMatch(/^[0-9a-f-]{36}$/)
    expect(b).toBe(a)
    expect(await writerId(file)).toBe(a)
  })
})
