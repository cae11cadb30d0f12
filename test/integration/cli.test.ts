import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { start } from '../support/process.js'
import { openssl, run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname
const node = process.execPath
/** serveArgs runs the bridge on free loopback ports, quietly. */
const serveArgs = (dir: string): string[] => [
  ...[cli, 'serve', '--state-dir', dir, '--host', '127.0.0.1', '--port', '0'],
  ...['--log-level', 'warn', '--set', 'health.port=0', '--set', 'health.host=127.0.0.1'],
]

describe('registration-bridge CLI', () => {
  it('init writes a development PKI and refuses to overwrite it without --force', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cli-'))
    const first = await run(node, [cli, 'init', '--state-dir', dir])
    expect(first.code).toBe(0)
    expect(first.stdout).toContain(`Wrote a development PKI to ${join(dir, 'pki')}`)
    const again = await run(node, [cli, 'init', '--state-dir', dir])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('use --force to overwrite')
    expect((await run(node, [cli, 'init', '--state-dir', dir, '--force'])).code).toBe(0)
    expect((await stat(join(dir, 'pki/issuing-ca.key'))).mode & 0o777).toBe(0o600)
  })

  it('serve creates the PKI on first run and says where; register writes working credentials', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cli-'))
    const serve = start(node, serveArgs(dir))
    try {
      await serve.waitFor(/Bridge listening on mqtts:\/\/127\.0\.0\.1:(\d+)/)
      expect(serve.output()).toContain(`Created a development PKI in ${join(dir, 'pki')}`)
      const port = /:(\d+)\n/.exec(serve.output())?.[1]
      const out = join(dir, 'creds')
      const register = await run(node, [
        ...[cli, 'register', '--url', `mqtts://localhost:${port}`, '--state-dir', dir],
        ...['--device', 'gateway-001', '--csr', '--key-algorithm', 'ECDSA-P384', '--out', out],
      ])
      expect(register.stderr).toBe('')
      expect(register.stdout).toContain(`Wrote device.crt, device.key, ca.crt to ${out}`)
      expect(await openssl(['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'device.crt')])).toContain(
        ': OK',
      )
      expect((await stat(join(out, 'device.key'))).mode & 0o777).toBe(0o600)
      const rejected = await run(node, [
        ...[cli, 'register', '--url', `mqtts://localhost:${port}`, '--state-dir', dir],
        ...['--device', 'device-001', '--key-algorithm', 'DSA'],
      ])
      expect(rejected.code).toBe(2) // a usage error, found before connecting
      expect(rejected.stderr).toContain('--key-algorithm must be one of')
    } finally {
      serve.kill()
    }
    expect(await serve.exited).toBe(0) // SIGTERM stops it cleanly
  })

  it('register reports a rejection with its wire code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cli-'))
    const serve = start(node, [
      ...serveArgs(dir),
      ...['--set', 'registration.allowedKeyAlgorithms=ECDSA-P256'],
    ])
    try {
      await serve.waitFor(/Bridge listening on mqtts:\/\/127\.0\.0\.1:\d+/)
      const port = /:(\d+)\n/.exec(serve.output())?.[1]
      const result = await run(node, [
        ...[cli, 'register', '--url', `mqtts://localhost:${port}`, '--state-dir', dir],
        ...['--device', 'device-001', '--key-algorithm', 'Ed25519', '--out', join(dir, 'c')],
      ])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain('registration rejected: KEY_NOT_ALLOWED')
    } finally {
      serve.kill()
    }
    await serve.exited
  })

  it('serve lists every configuration problem, naming each setting, and exits 2', async () => {
    const result = await run(node, [
      cli,
      'serve',
      '--port',
      '99999',
      '--set',
      'identity.source=serial',
      '--set',
      'bogus=1',
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('invalid configuration:')
    expect(result.stderr).toContain('listen.port:')
    expect(result.stderr).toContain('identity.source:')
    expect(result.stderr).toContain('--set bogus=1:')
  })

  it('serve refuses a lifecycle.operationalCaFile that holds a factory CA of tls.clientCaFile, exit 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cli-'))
    expect((await run(node, [cli, 'init', '--state-dir', dir])).code).toBe(0)
    const bundle = join(dir, 'operational-bundle.crt')
    const pem = async (name: string) => readFile(join(dir, 'pki', name), 'utf8')
    await writeFile(bundle, (await pem('issuing-ca.crt')) + (await pem('factory-ca.crt')))
    const result = await run(node, [...serveArgs(dir), '--set', `lifecycle.operationalCaFile=${bundle}`])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('invalid configuration:')
    expect(result.stderr).toMatch(
      /lifecycle\.operationalCaFile: \S+ holds .+, a factory CA of tls\.clientCaFile/,
    )
  })

  it('an unreadable configured file is named by its setting', async () => {
    const result = await run(node, [
      cli,
      'serve',
      '--set',
      'tls.certFile=/nonexistent/server.crt',
      '--port',
      '0',
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('tls.certFile: cannot read /nonexistent/server.crt (ENOENT)')
  })

  it('usage errors exit 2 and print help', async () => {
    const unknown = await run(node, [cli, 'frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('Usage: registration-bridge <command>')
    const badFlag = await run(node, [cli, 'serve', '--no-such-flag'])
    expect(badFlag.code).toBe(2)
    expect((await run(node, [cli, 'register', '--help'])).stdout).toContain('--csr')
  })
})
