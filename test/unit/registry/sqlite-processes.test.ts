import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { start } from '../../support/process.js'

// Workers of one bridge share one SQLite registry file: each process opens it (the first ones create it at the
// same moment) and commits with the record's precondition (a read, then the writes). A deferred transaction
// that read first cannot take the write lock once another process wrote: it fails at once with "database is
// locked". The registry's transactions take the write lock first and wait their turn.

const repo = new URL('../../../', import.meta.url).pathname

const writer = (file: string, name: string, count: number): string => `
import { SqliteRegistry } from ${JSON.stringify(join(repo, 'dist/registry/sqlite-registry.js'))}
const registry = new SqliteRegistry(${JSON.stringify(file)})
const at = Date.now()
const records = Array.from({ length: ${count} }, (_, i) => registry.record({
  identity: '${name}-' + i, serialNumber: '${name}' + i.toString(16).padStart(8, '0'), notBefore: new Date(at),
  notAfter: new Date(at + 86400000), keySource: 'device', issuer: 'local-ca', sha256Fingerprint: 'ab',
  issuedAt: new Date(at), requestHash: 'h' + i,
}, { newest: undefined }))
const results = await Promise.allSettled(records)
const failed = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason))
await registry.close()
console.log(JSON.stringify({ failed: failed.length, first: failed[0] }))
`

describe('a SQLite registry shared by processes', () => {
  it('two processes create it at once and commit records with preconditions: none is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-sqlite-processes-'))
    const file = join(dir, 'registry.sqlite')
    const scripts = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const script = join(dir, `${name}.mjs`)
        await writeFile(script, writer(file, name, 300))
        return script
      }),
    )
    const runs = scripts.map((script) => start('node', [script]))
    const codes = await Promise.all(runs.map((r) => r.exited))
    const outputs = runs.map((r) => r.output())
    expect(codes, outputs.join('\n')).toEqual([0, 0, 0])
    for (const output of outputs) expect(output).toContain('{"failed":0}')
    const registry = new SqliteRegistry(file, { readonly: true })
    expect((await registry.list()).length).toBe(900)
    await registry.close()
  })
})
