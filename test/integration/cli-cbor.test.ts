import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { writePolicy } from '../support/gateway.js'
import { openssl, run } from '../support/tools.js'

// `registration-bridge register --format cbor` (dist/: npm run build first). What proves the CBOR went over the
// wire: the bridge's request limit sits between a CSR request's CBOR size and its JSON size, so the same request in
// JSON is refused REQUEST_TOO_LARGE and in CBOR is issued; the client wrote PEM files from the DER replies.

const cli = new URL('../../dist/cli.js', import.meta.url).pathname
const LIMIT = 320 // a P-256 CSR request: about 260 bytes in CBOR, about 400 in JSON
let bridge: TestBridge
let dir: string

beforeAll(async () => {
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([`limits.maxRequestBytes=${LIMIT}`, `gateways.policyFile=${policy}`])
  dir = await mkdtemp(join(tmpdir(), 'mrb-cli-cbor-'))
})

afterAll(async () => {
  await bridge?.stop()
})

const registerCli = (args: string[]) =>
  run('node', [cli, 'register', '--url', bridge.url, '--state-dir', bridge.pki.stateDir, ...args], {
    timeoutMs: 30_000,
  })

describe('register --format cbor', () => {
  it('a CSR request too large as JSON is issued as CBOR; the files are PEM that openssl verifies', async () => {
    const json = await registerCli(['--device', 'device-001', '--csr', '--out', join(dir, 'json')])
    expect(json.code).toBe(1)
    expect(json.stderr).toContain('REQUEST_TOO_LARGE')
    const out = join(dir, 'cbor')
    const cbor = await registerCli(['--device', 'device-001', '--csr', '--format', 'cbor', '--out', out])
    expect(cbor.code, cbor.stderr).toBe(0)
    const cert = await readFile(join(out, 'device.crt'), 'utf8')
    expect(new X509Certificate(cert).subject).toBe('CN=device-001')
    const verified = await openssl(['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'device.crt')])
    expect(verified).toContain('OK')
  })

  it('a server key: the key comes back as PEM PKCS#8 made from the DER reply', async () => {
    const out = join(dir, 'server-key')
    const r = await registerCli(['--device', 'device-002', '--format', 'cbor', '--out', out])
    expect(r.code, r.stderr).toBe(0)
    const fromKey = await openssl(['pkey', '-in', join(out, 'device.key'), '-pubout'])
    const fromCert = await openssl(['x509', '-in', join(out, 'device.crt'), '-noout', '-pubkey'])
    expect(fromKey).toBe(fromCert)
  })

  it('a gateway registers its sensors in CBOR', async () => {
    const out = join(dir, 'gateway')
    const r = await registerCli([
      ...['--gateway', 'gateway-001', '--format', 'cbor', '--out', out],
      ...['--device', 'gateway-001-sensor-1', '--device', 'gateway-001-sensor-2'],
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('2 issued, 0 rejected')
    const cert = await readFile(join(out, 'gateway-001-sensor-2', 'device.crt'), 'utf8')
    expect(new X509Certificate(cert).subject).toBe('CN=gateway-001-sensor-2')
  })

  it('--format other than json or cbor is a usage error (exit 2)', async () => {
    const r = await registerCli(['--device', 'device-003', '--format', 'xml'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--format must be one of json, cbor')
  })
})
