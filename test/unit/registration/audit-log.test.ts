import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { AuditLog, type AuditRecord } from '../../../src/registration/audit-log.js'

const record = (i: number): AuditRecord => ({
  time: new Date().toISOString(),
  identity: `device-${i}`,
  serialNumber: i.toString(16),
  notAfter: new Date().toISOString(),
  sha256Fingerprint: 'f'.repeat(64),
  issuer: 'local-ca',
  keySource: 'bridge',
})

it('every append resolves and is on disk, however appends interleave with flushes', async () => {
  const file = join(await mkdtemp(join(tmpdir(), 'mrb-audit-')), 'nested', 'audit.log')
  const log = new AuditLog(file)
  // one at a time (each append arrives just as the previous flush ends), then bursts
  for (let i = 0; i < 50; i++) await log.append(record(i))
  for (let burst = 0; burst < 10; burst++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(record(100 + burst * 20 + i))))
  }
  await log.close()
  const lines = (await readFile(file, 'utf8')).trim().split('\n')
  expect(lines).toHaveLength(250)
  expect(JSON.parse(lines[0] ?? '')).toMatchObject({ identity: 'device-0' })
})
