import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { writePolicy } from '../support/gateway.js'
import { opensslPkcs12, pythonPkcs12 } from '../support/pkcs12.js'
import { openssl, run } from '../support/tools.js'

// `registration-bridge register --pkcs12` (dist/: npm run build first): the password from a file or the
// environment, never argv; a .p12 that openssl reads; usage errors that never show the password.

const cli = new URL('../../dist/cli.js', import.meta.url).pathname
let bridge: TestBridge
let dir: string

beforeAll(async () => {
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([`gateways.policyFile=${policy}`])
  dir = await mkdtemp(join(tmpdir(), 'mrb-cli-p12-'))
})

afterAll(async () => {
  await bridge?.stop()
})

const registerCli = (args: string[], env?: Record<string, string>) =>
  run('node', [cli, 'register', '--url', bridge.url, '--state-dir', bridge.pki.stateDir, ...args], {
    timeoutMs: 30_000,
    ...(env ? { env } : {}),
  })

async function passwordFile(password: string): Promise<string> {
  const file = join(dir, `pw-${Math.random().toString(36).slice(2)}`)
  await writeFile(file, `${password}\n`, { mode: 0o600 })
  return file
}

/** keyMatches says whether the bundle's key is the key of `certFile`, as openssl sees both. */
async function keyMatches(p12: string, password: string, certFile: string): Promise<boolean> {
  const o = await opensslPkcs12(await readFile(p12), password)
  expect(o.code, o.info).toBe(0)
  const keyFile = join(dir, 'extracted.key')
  await writeFile(
    keyFile,
    /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(o.pem)?.[0] ?? '',
  )
  const fromKey = await openssl(['pkey', '-in', keyFile, '-pubout'])
  const fromCert = await openssl(['x509', '-in', certFile, '-noout', '-pubkey'])
  return fromKey === fromCert
}

describe('register --pkcs12', () => {
  it('with --pkcs12-password-file writes device.p12 (owner only), device.crt and ca.crt, and no device.key', async () => {
    const password = 'a file password ünïcode'
    const out = join(dir, 'device-001')
    const r = await registerCli([
      ...['--device', 'device-001', '--pkcs12', '--pkcs12-password-file', await passwordFile(password)],
      ...['--key-algorithm', 'Ed25519', '--out', out],
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`Wrote device.crt, device.p12, ca.crt to ${out}`)
    await expect(stat(join(out, 'device.key'))).rejects.toThrow(/ENOENT/)
    expect((await stat(join(out, 'device.p12'))).mode & 0o777).toBe(0o600)
    expect(await keyMatches(join(out, 'device.p12'), password, join(out, 'device.crt'))).toBe(true)
    expect(await pythonPkcs12(await readFile(join(out, 'device.p12')), password)).toMatchObject({
      ok: true,
      keyType: 'Ed25519PrivateKey',
    })
    expect(await openssl(['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'device.crt')])).toContain(
      ': OK',
    )
  })

  it('with MRB_PKCS12_PASSWORD in the environment', async () => {
    const password = 'an environment password'
    const out = join(dir, 'device-002')
    const r = await registerCli(['--device', 'device-002', '--pkcs12', '--out', out], {
      MRB_PKCS12_PASSWORD: password,
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(await keyMatches(join(out, 'device.p12'), password, join(out, 'device.crt'))).toBe(true)
  })

  it('a gateway: one bundle per sensor without a CSR', async () => {
    const password = 'a gateway password'
    const out = join(dir, 'sensors')
    const r = await registerCli([
      ...['--gateway', 'gateway-001', '--device', 'gateway-001-sensor-1', '--device', 'gateway-001-sensor-2'],
      ...['--pkcs12', '--pkcs12-password-file', await passwordFile(password), '--out', out],
    ])
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain('2 issued, 0 rejected')
    for (const sensor of ['gateway-001-sensor-1', 'gateway-001-sensor-2']) {
      const d = join(out, sensor)
      expect(await keyMatches(join(d, 'device.p12'), password, join(d, 'device.crt'))).toBe(true)
      await expect(stat(join(d, 'device.key'))).rejects.toThrow(/ENOENT/)
    }
  })

  it.each([
    ['no password at all', [], {}, '--pkcs12 needs a password'],
    [
      'a short password in the file',
      ['@file:short'],
      {},
      'the password must be a string of 8-128 characters',
    ],
    ['a control character in the environment', [], { MRB_PKCS12_PASSWORD: 'bell\u0007-password' }, '8-128'],
    [
      'both a file and the environment',
      ['@file:long-enough-1'],
      { MRB_PKCS12_PASSWORD: 'long-enough-2' },
      'not both',
    ],
    ['with --csr', ['--csr', '@file:long-enough-3'], {}, 'not with --csr'],
    ['a missing file', ['--pkcs12-password-file', '/nonexistent/pw'], {}, 'ENOENT'],
  ] as const)(
    '%s is a usage error (exit 2), before anything is sent; the password is never shown',
    async (_, extra, env, message) => {
      const args: string[] = []
      for (const a of extra)
        args.push(
          ...(a.startsWith('@file:') ? ['--pkcs12-password-file', await passwordFile(a.slice(6))] : [a]),
        )
      const r = await registerCli(
        ['--device', 'device-003', '--pkcs12', ...args, '--out', join(dir, 'never')],
        env,
      )
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(message)
      for (const secret of [...extra.map((a) => a.replace('@file:', '')), ...Object.values(env)])
        if (secret.length >= 5 && !secret.startsWith('--') && !secret.startsWith('/'))
          expect(r.stderr + r.stdout).not.toContain(secret)
      await expect(stat(join(dir, 'never'))).rejects.toThrow(/ENOENT/)
    },
  )
})
