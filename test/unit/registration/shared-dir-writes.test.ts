import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../../src/pki/dev-pki.js'
import { loadCa } from '../../../src/pki/signer.js'
import { writeCrl } from '../../../src/registration/crl-publisher.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { createTestPki } from '../../support/pki.js'
import { start } from '../../support/process.js'
import { openssl } from '../../support/tools.js'

// Workers, replicas and the CLI share a state dir and replace the same files (the CRL, the issued index) at the
// same moments (start, a revocation). Each writer must use its own temporary file: with one fixed name, one
// writer's rename takes the file another is about to rename (ENOENT, "cannot write the CRL").

const repo = new URL('../../../', import.meta.url).pathname

async function setup() {
  const pki = await createTestPki()
  const dir = await mkdtemp(join(tmpdir(), 'mrb-shared-dir-'))
  const caCert = pki.file(DEV_PKI_FILES.issuingCaCert)
  const caKey = pki.file(DEV_PKI_FILES.issuingCaKey)
  const registryFile = join(dir, 'registry.sqlite')
  await new SqliteRegistry(registryFile).close()
  return { dir, caCert, caKey, registryFile, crlFile: join(dir, 'crl.pem') }
}

const leftovers = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.tmp'))

describe('files replaced in a shared state dir', () => {
  it('concurrent CRL writers in one process all succeed and leave one valid CRL, no temporary files', async () => {
    const { dir, caCert, caKey, registryFile, crlFile } = await setup()
    const ca = loadCa(await readFile(caCert, 'utf8'), await readFile(caKey, 'utf8'))
    const registry = new SqliteRegistry(registryFile)
    const writes = Array.from({ length: 16 }, () =>
      writeCrl(registry, ca, { file: crlFile, validityHours: 1 }),
    )
    const results = await Promise.allSettled(writes)
    await registry.close()
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    await openssl(['crl', '-in', crlFile, '-CAfile', caCert, '-verify', '-noout'])
    expect(await leftovers(dir)).toEqual([])
  })

  it('CRL writers in separate processes (workers, replicas) never fail each other', async () => {
    const { dir, caCert, caKey, registryFile, crlFile } = await setup()
    const script = `
      const { readFileSync } = await import('node:fs')
      const { loadCa } = await import(${JSON.stringify(join(repo, 'dist/pki/signer.js'))})
      const { SqliteRegistry } = await import(${JSON.stringify(join(repo, 'dist/registry/sqlite-registry.js'))})
      const { writeCrl } = await import(${JSON.stringify(join(repo, 'dist/registration/crl-publisher.js'))})
      const ca = loadCa(readFileSync(process.env.CA_CERT, 'utf8'), readFileSync(process.env.CA_KEY, 'utf8'))
      const registry = new SqliteRegistry(process.env.REGISTRY, { readonly: true })
      for (let i = 0; i < 40; i++) await writeCrl(registry, ca, { file: process.env.CRL, validityHours: 1 })
      console.log('wrote 40')
    `
    const env = { ...process.env, CA_CERT: caCert, CA_KEY: caKey, REGISTRY: registryFile, CRL: crlFile }
    const writers = Array.from({ length: 4 }, () =>
      start('node', ['--input-type=module', '-e', script], { env }),
    )
    const codes = await Promise.all(writers.map((w) => w.exited))
    expect(codes, writers.map((w) => w.output()).join('\n')).toEqual([0, 0, 0, 0])
    await openssl(['crl', '-in', crlFile, '-CAfile', caCert, '-verify', '-noout'])
    expect(await leftovers(dir)).toEqual([])
  })
})
