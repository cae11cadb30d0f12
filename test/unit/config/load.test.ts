import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../../src/config/load.js'

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('loadConfig', () => {
  it('has working defaults: the embedded CA and a development PKI under stateDir', () => {
    const config = loadConfig({ cwd: '/srv' })
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8883 })
    expect(config.usesDevPki).toBe(true)
    expect(config.tls.clientCaFile).toBe('/srv/.registration-bridge/pki/factory-ca.crt')
    expect(config.auditLog).toBe('/srv/.registration-bridge/audit.log')
    expect(Object.isFrozen(config.registration.rateLimit)).toBe(true)
  })

  it('layers file < environment < flags', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-config-'))
    const file = join(dir, 'bridge.yaml')
    await writeFile(file, 'listen:\n  port: 1000\n  host: 127.0.0.1\nlimits:\n  maxConnections: 5\n')
    const config = loadConfig({
      file,
      env: { MRB_LISTEN_PORT: '2000', MRB_REGISTRATION_ALLOWED_KEY_ALGORITHMS: 'ECDSA-P256, Ed25519' },
      sets: ['listen.port=3000'],
    })
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 3000 })
    expect(config.limits.maxConnections).toBe(5)
    expect(config.registration.allowedKeyAlgorithms).toEqual(['ECDSA-P256', 'Ed25519'])
  })

  it('reads JSON files too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-config-'))
    const file = join(dir, 'bridge.json')
    await writeFile(file, JSON.stringify({ topics: { request: 'boot/req' } }))
    expect(loadConfig({ file }).topics.request).toBe('boot/req')
  })

  it('lists every problem at once, each naming its setting', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { MRB_LISTEN_PORT: '70000', MRB_IDENTITY_SOURCE: 'serial' },
        sets: [
          'registration.allowedKeyAlgorithms=Ed25519',
          'topics.request=a/#',
          'nope=1',
          'certificate.dnsNames=bad_name.{deviceId}',
        ],
      }),
    )
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^listen\.port: /),
        expect.stringMatching(/^identity\.source: /),
        expect.stringMatching(/^registration\.defaultKeyAlgorithm: must be one of/),
        expect.stringMatching(/^topics\.request: must be a topic name/),
        expect.stringMatching(/^--set nope=1: /),
        expect.stringMatching(/^certificate\.dnsNames\.0: is not a DNS name pattern/),
      ]),
    )
    expect(problems).toHaveLength(6)
  })

  it('refuses unknown settings in a file and a file that cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-config-'))
    const file = join(dir, 'bad.yaml')
    await writeFile(file, 'listen:\n  prot: 1\n')
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      expect.stringMatching(/^listen: Unrecognized key: "prot"/),
    ])
    expect(problemsOf(() => loadConfig({ file: join(dir, 'missing.yaml') }))).toEqual([
      expect.stringContaining('ENOENT'),
    ])
  })

  it('does not use the development PKI once any PKI file is configured', () => {
    expect(loadConfig({ sets: ['tls.certFile=/etc/x.crt'] }).usesDevPki).toBe(false)
  })
})
