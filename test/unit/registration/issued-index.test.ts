import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { AuditLog, type AuditRecord } from '../../../src/registration/audit-log.js'
import { type IndexEntry, IssuedIndex } from '../../../src/registration/issued-index.js'

const record = (i: number, ageMs = 0): AuditRecord => ({
  time: new Date(Date.now() - ageMs).toISOString(),
  identity: `device-${i}`,
  serialNumber: i.toString(16),
  notAfter: new Date().toISOString(),
  sha256Fingerprint: 'f'.repeat(64),
  issuer: 'local-ca',
  keySource: 'device',
  requestHash: `${i}`.padStart(64, '0'),
})
const entry = (i: number, ageMs = 0): IndexEntry => ({ key: `k${i}`, record: record(i, ageMs) })
const jsonLines = (items: object[]): string => items.map((x) => `${JSON.stringify(x)}\n`).join('')
const lines = async (path: string): Promise<{ serialNumber?: string; key?: string }[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))

async function setup(index: object[], audit: object[]) {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-index-'))
  const auditPath = join(dir, 'audit.log')
  const indexPath = `${auditPath}.issued`
  await writeFile(indexPath, jsonLines(index))
  await writeFile(auditPath, jsonLines(audit))
  const log = new AuditLog(auditPath)
  const issued = new IssuedIndex({ path: indexPath, ttlSeconds: 600, maxEntries: 10 }, log)
  await issued.open(auditPath)
  return { auditPath, indexPath, log, issued }
}

it('at start, adds to the audit log the issuances it missed when the process died between the two writes', async () => {
  const index = [entry(1), entry(2), entry(3)]
  const { auditPath, log, issued } = await setup(index, [record(1)])
  await issued.close()
  await log.close()
  expect((await lines(auditPath)).map((r) => r.serialNumber)).toEqual(['1', '2', '3'])
})

it('at start, drops entries older than the lifetime and compacts the file; a cut-short line is ignored', async () => {
  const dir = await setup([entry(1, 3_600_000), entry(2)], [record(1, 3_600_000), record(2)])
  await dir.issued.close()
  await writeFile(dir.indexPath, `${await readFile(dir.indexPath, 'utf8')}{"key":"k9","rec`)
  const reopened = new IssuedIndex({ path: dir.indexPath, ttlSeconds: 600, maxEntries: 10 }, dir.log)
  await reopened.open(dir.auditPath)
  expect(reopened.lookup('k1')).toBeUndefined()
  expect(reopened.lookup('k2')?.record.serialNumber).toBe('2')
  await reopened.close()
  expect((await lines(dir.indexPath)).map((e) => e.key)).toEqual(['k2'])
  await dir.log.close()
})

it('keeps the file bounded while running: past the compaction interval it is rewritten with the live entries', async () => {
  const { indexPath, log, issued } = await setup([], [])
  for (let i = 0; i < 1005; i++) await issued.record(entry(i))
  const kept = await lines(indexPath)
  expect(kept.length).toBeLessThanOrEqual(10 + 5)
  // in the order they were written, ending with the newest
  expect(kept.at(-1)?.key).toBe('k1004')
  expect(issued.lookup('k1004')).toBeDefined()
  await issued.close()
  await log.close()
})
