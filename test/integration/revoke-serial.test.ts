import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname

describe('revoke --serial', () => {
  // one serial in sixteen starts with a 0 digit (its first octet is below 0x10); openssl and Node print it
  // without the leading zero, the registry keeps whole octets
  it.each([
    ['as the registry writes it', '0a1b2c3d'],
    ['without its leading zero, as openssl prints it', 'a1b2c3d'],
    ['upper case with colons', '0A:1B:2C:3D'],
  ])('finds a serial with a leading zero digit written %s', async (_how, given) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'mrb-revoke-'))
    // the embedded CA of a development PKI signs the CRL that revoke writes
    expect((await run(process.execPath, [cli, 'init', '--state-dir', stateDir])).code).toBe(0)
    const file = join(stateDir, 'registry.sqlite')
    const registry = new SqliteRegistry(file)
    const now = Date.now()
    await registry.record({
      identity: 'device-009',
      serialNumber: '0a1b2c3d',
      notBefore: new Date(now),
      notAfter: new Date(now + 86_400_000),
      keySource: 'device',
      issuer: 'local-ca',
      sha256Fingerprint: 'ab'.repeat(32),
      issuedAt: new Date(now),
    })
    await registry.close()
    const result = await run(process.execPath, [
      cli,
      'revoke',
      '--serial',
      given,
      '--state-dir',
      stateDir,
      '--set',
      `registry.file=${file}`,
      '--set',
      `auditLog=${join(stateDir, 'audit.log')}`,
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const reader = new SqliteRegistry(file, { readonly: true })
    expect((await reader.certificate('0a1b2c3d'))?.state).toBe('revoked')
    await reader.close()
  })
})
