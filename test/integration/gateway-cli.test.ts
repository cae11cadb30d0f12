import { readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { opensslCsr } from '../support/csr.js'
import { writePolicy } from '../support/gateway.js'
import { type Running, start } from '../support/process.js'
import { openssl, run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname
const node = process.execPath
const POLICY = `gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n`

let policyFile: string
let dir: string
let serve: Running
let port: string

beforeAll(async () => {
  policyFile = await writePolicy(POLICY)
  dir = dirname(policyFile)
  serve = start(node, [
    ...[cli, 'serve', '--state-dir', dir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info'],
    ...[
      '--set',
      'health.port=0',
      '--set',
      'health.host=127.0.0.1',
      '--set',
      `gateways.policyFile=${policyFile}`,
      '--set',
      'gateways.watch=false', // SIGHUP, not the file watch, is what reloads here
    ],
  ])
  await serve.waitFor(/Bridge listening on mqtts:\/\/127\.0\.0\.1:(\d+)/)
  port = /Bridge listening on mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(serve.output())?.[1] ?? ''
})

afterAll(async () => {
  serve?.kill()
  expect(await serve?.exited).toBe(0)
})

const pki = (): string => join(dir, 'pki')
/** tls are the mosquitto client flags of the walkthrough in docs/protocol.md, for gateway-001. */
const tls = (): string[] => [
  ...['-h', 'localhost', '-p', port, '--cafile', join(pki(), DEV_PKI_FILES.issuingCaCert)],
  ...['--cert', join(pki(), 'devices/gateway-001.crt'), '--key', join(pki(), 'devices/gateway-001.key')],
]

describe('the gateway walkthrough', () => {
  it('mosquitto_pub sends a batch; mosquitto_sub reads one reply per device and the closing one', async () => {
    const sensor2 = await opensslCsr('/CN=gateway-001-sensor-2')
    const csrFile = join(dir, 'sensor-2.csr')
    await writeFile(csrFile, sensor2.csr)
    const der = await run('openssl', [
      'req',
      '-in',
      csrFile,
      '-outform',
      'DER',
      '-out',
      join(dir, 'sensor-2.der'),
    ])
    expect(der.code).toBe(0)
    const csr = (await readFile(join(dir, 'sensor-2.der'))).toString('base64')
    const sub = start('stdbuf', [
      ...['-oL', 'mosquitto_sub', ...tls(), '-d', '-q', '1', '-t', 'registration/gateway-001/reply'],
      ...['-C', '3', '-W', '20'],
    ])
    await sub.waitFor(/received SUBACK/)
    const batch = `{"extension":"gateway/1","requestId":"batch-1","devices":[{"deviceId":"gateway-001-sensor-1"},{"deviceId":"gateway-001-sensor-2","csr":"${csr}"}]}`
    const pub = await run('mosquitto_pub', [...tls(), '-t', 'registration/request', '-q', '1', '-m', batch])
    expect(pub.code).toBe(0)
    expect(await sub.exited).toBe(0)
    const replies = sub
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(replies).toHaveLength(3)
    const bySensor = new Map(replies.map((r) => [r.deviceId, r]))
    expect(bySensor.get('gateway-001-sensor-1')).toMatchObject({ status: 'issued', requestId: 'batch-1' })
    expect(bySensor.get('gateway-001-sensor-1')?.privateKey).toMatch(/BEGIN PRIVATE KEY/)
    expect(bySensor.get('gateway-001-sensor-2')).toMatchObject({ status: 'issued', requestId: 'batch-1' })
    expect(bySensor.get('gateway-001-sensor-2')).not.toHaveProperty('privateKey')
    expect(replies[2]).toMatchObject({ status: 'complete', issued: 2, rejected: 0, requestId: 'batch-1' })
  })

  it('register --gateway writes one credentials folder per sensor; devices list and show read the registry', async () => {
    const sensor = await opensslCsr('/CN=gateway-001-sensor-20')
    await writeFile(join(dir, 'sensor-20.csr'), sensor.csr)
    await writeFile(
      join(dir, 'sensors.txt'),
      '# the gateway list\ngateway-001-sensor-20 sensor-20.csr\ngateway-001-sensor-21\n',
    )
    const out = join(dir, 'creds')
    const register = await run(node, [
      ...[
        cli,
        'register',
        '--url',
        `mqtts://localhost:${port}`,
        '--state-dir',
        dir,
        '--gateway',
        'gateway-001',
      ],
      ...['--device', 'gateway-001-sensor-10', '--device', 'gateway-001-sensor-11', '--csr'],
      ...['--devices', join(dir, 'sensors.txt'), '--batch-size', '2', '--out', out],
    ])
    expect(register.stderr).toBe('')
    expect(register.stdout).toContain('4 issued, 0 rejected')
    expect(register.code).toBe(0)
    for (const id of ['gateway-001-sensor-10', 'gateway-001-sensor-11', 'gateway-001-sensor-21']) {
      const folder = join(out, id)
      expect(
        await openssl(['verify', '-CAfile', join(folder, 'ca.crt'), join(folder, 'device.crt')]),
      ).toContain(': OK')
      expect((await stat(join(folder, 'device.key'))).mode & 0o777).toBe(0o600)
    }
    await expect(stat(join(out, 'gateway-001-sensor-20', 'device.key'))).rejects.toThrow() // the sensor kept its key

    const refused = await run(node, [
      ...[
        cli,
        'register',
        '--url',
        `mqtts://localhost:${port}`,
        '--state-dir',
        dir,
        '--gateway',
        'gateway-001',
      ],
      ...['--device', 'device-003', '--out', out],
    ])
    expect(refused.code).toBe(1)
    // rejections go to stderr, as the help says; stdout has the issued devices and the summary
    expect(refused.stderr).toContain('device-003: rejected')
    expect(refused.stderr).toContain('DEVICE_NOT_ALLOWED')
    expect(refused.stdout).not.toContain('device-003: rejected')
    expect(refused.stdout).toContain('0 issued, 1 rejected')

    // a device that registers itself has no owner: `"owner": null` in JSON, the field never left out
    const self = await run(node, [
      ...[cli, 'register', '--url', `mqtts://localhost:${port}`, '--state-dir', dir],
      ...['--device', 'device-001', '--out', join(dir, 'self')],
    ])
    expect(self.code, self.stderr).toBe(0)
    const everyone = JSON.parse(
      (await run(node, [cli, 'devices', 'list', '--state-dir', dir, '--json'])).stdout,
    ) as Record<string, unknown>[]
    expect(everyone.find((d) => d.identity === 'device-001')).toMatchObject({ owner: null })
    for (const d of everyone) expect(d).toHaveProperty('owner')
    const shown = JSON.parse(
      (await run(node, [cli, 'devices', 'show', 'device-001', '--state-dir', dir, '--json'])).stdout,
    ) as { owner: unknown; certificates: Record<string, unknown>[] }
    expect(shown.owner).toBeNull()
    expect(shown.certificates[0]).toMatchObject({ registeredBy: null, supersededBy: null, revokedAt: null })

    const list = await run(node, [
      cli,
      'devices',
      'list',
      '--state-dir',
      dir,
      '--owner',
      'gateway-001',
      '--json',
    ])
    expect(list.code).toBe(0)
    const owned = (JSON.parse(list.stdout) as { identity: string; owner: string }[]).map((d) => d.identity)
    expect(owned).toEqual(
      expect.arrayContaining(['gateway-001-sensor-10', 'gateway-001-sensor-20', 'gateway-001-sensor-21']),
    )
    const show = await run(node, [cli, 'devices', 'show', 'gateway-001-sensor-20', '--state-dir', dir])
    expect(show.code).toBe(0)
    expect(show.stdout).toContain('owner: gateway-001')
    expect(show.stdout).toMatch(/active\s+\S+\s+device\s+gateway-001/)
    const missing = await run(node, [cli, 'devices', 'show', 'nobody', '--state-dir', dir])
    expect(missing.code).toBe(1)
  })

  it('reloads the policy on SIGHUP, and refuses a bad file keeping the old policy', async () => {
    await writeFile(policyFile, 'gateways:\n  - match: gateway-001\n    devices: { patterns: 42 }\n')
    process.kill(serve.pid ?? 0, 'SIGHUP')
    await serve.waitFor(/gateway policy refused; keeping the old one/)
    const still = await run(node, [
      ...[
        cli,
        'register',
        '--url',
        `mqtts://localhost:${port}`,
        '--state-dir',
        dir,
        '--gateway',
        'gateway-001',
      ],
      ...['--device', 'gateway-001-sensor-30', '--out', join(dir, 'creds')],
    ])
    expect(still.stdout).toContain('1 issued, 0 rejected')
    await writeFile(policyFile, 'gateways: []\n')
    process.kill(serve.pid ?? 0, 'SIGHUP')
    await serve.waitFor(/"rules":0,"msg":"gateway policy reloaded"/)
    const gone = await run(node, [
      ...[
        cli,
        'register',
        '--url',
        `mqtts://localhost:${port}`,
        '--state-dir',
        dir,
        '--gateway',
        'gateway-001',
      ],
      ...['--device', 'gateway-001-sensor-31', '--out', join(dir, 'creds')],
    ])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain('NOT_AUTHORIZED')
  })
})

describe('start-up', () => {
  it('a bad gateway policy stops the bridge with a configuration error', async () => {
    const bad = await writePolicy('gateways:\n  - match: "bad identity!"\n')
    const result = await run(node, [
      ...[cli, 'serve', '--state-dir', dirname(bad), '--host', '127.0.0.1', '--port', '0'],
      ...['--set', 'health.port=0', '--set', `gateways.policyFile=${bad}`],
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('gateways.policyFile')
    expect(result.stderr).toContain('gateways.0.match')
  })
})
