import { mkdir, mkdtemp, rename, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/index.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { connectGateway, type GatewayMessage } from '../support/gateway.js'
import { scrapeMetrics } from '../support/metrics.js'
import { replaceFile } from '../support/rotation.js'

// Every operator file the bridge reloads while it runs (deny list, gateway policy, the allow-list the policy
// names), broken each way a write can leave it: the content in force stays, a log line and the refused counter
// say so. Every write is atomic (rename), so that the watcher sees only the state under test.

const DENY = 'identities:\n  - device-004\n  - device-005\n'
const POLICY =
  'gateways:\n  - match: gateway-001\n    devices:\n      patterns: ["{gateway}-sensor-*"]\n      allowListFile: allow.txt\n'
const ALLOW = 'meter-1\nmeter-2\nmeter-3\nmeter-4\n'

let bridge: TestBridge
let work: string
let counter = 0

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mrb-reload-'))
  await mkdir(join(work, 'deny'))
  await mkdir(join(work, 'gateways'))
  await replaceFile(join(work, 'deny', 'deny.yaml'), DENY)
  await replaceFile(join(work, 'gateways', 'policy.yaml'), POLICY)
  await replaceFile(join(work, 'gateways', 'allow.txt'), ALLOW)
  bridge = await startTestBridge([
    `lifecycle.denyListFile=${join(work, 'deny', 'deny.yaml')}`,
    `gateways.policyFile=${join(work, 'gateways', 'policy.yaml')}`,
  ])
})

afterAll(async () => {
  await bridge?.stop()
})

/** connects tries an MQTT connection with a factory certificate: 'accepted', or the CONNACK code. */
async function connects(id: string): Promise<'accepted' | number | string> {
  try {
    const client = await connectTls(bridge.url, tlsFor(bridge, bridge.pki.device(id)), 5_000)
    await client.endAsync(true)
    return 'accepted'
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

/** registered asks gateway-001 to register one device: 'issued', or the error code. */
async function registered(deviceId: string): Promise<string> {
  const gateway = await connectGateway(bridge, 'gateway-001')
  const replies = await gateway.batch({ requestId: `r-${++counter}`, devices: [{ deviceId }] })
  await gateway.end()
  const answer = replies.find((r) => r.deviceId === deviceId) ?? (replies[0] as GatewayMessage)
  return answer.status === 'issued' ? 'issued' : String((answer.error as { code?: string })?.code)
}

const refusedCount = async (file: string): Promise<number | undefined> =>
  (await scrapeMetrics(bridge.bridge.healthPort as number)).sample(
    'mqtt_registration_bridge_file_reloads_total',
    { file, result: 'refused' },
  )

/** unreadable makes `path` a symlink to a directory, in one rename: reading it fails (EISDIR), as root too. */
async function unreadable(path: string): Promise<void> {
  const dir = await mkdtemp(join(work, 'dir-'))
  const link = `${path}.link`
  await symlink(dir, link)
  await rename(link, path)
}

interface Kind {
  readonly name: string
  readonly file: string
  readonly metric: 'deny_list' | 'gateway_policy'
  readonly log: string
  readonly good: string
  /** The next good content, cut short: a prefix that still parses under a loader that does not look. */
  readonly truncated: string
  readonly invalid: string
  /** in force: what the content in force allows or refuses, checked through the device-facing path */
  inForce(index: number): Promise<void>
}

const KINDS: Kind[] = [
  {
    name: 'deny list',
    file: 'deny/deny.yaml',
    metric: 'deny_list',
    log: 'deny list',
    good: DENY,
    truncated: 'identities:\n  - device-005\n  - devi',
    invalid: 'serials: [not-hex]\n',
    async inForce() {
      expect(await connects('device-004')).toBe(5)
    },
  },
  {
    name: 'gateway policy',
    file: 'gateways/policy.yaml',
    metric: 'gateway_policy',
    log: 'gateway policy',
    good: POLICY,
    truncated: 'gateways:\n  - match: gatew',
    invalid: 'gateways: 7\n',
    async inForce(index) {
      expect(await registered(`gateway-001-sensor-${index}`)).toBe('issued')
    },
  },
  {
    name: 'gateway allow-list',
    file: 'gateways/allow.txt',
    metric: 'gateway_policy',
    log: 'gateway policy',
    good: ALLOW,
    truncated: 'meter-1\nmet',
    invalid: 'meter-1\nnot an identity!\n',
    async inForce(index) {
      expect(await registered(`meter-${index + 1}`)).toBe('issued')
    },
  },
]

const BREAKS: readonly [string, (kind: Kind, path: string) => Promise<void>][] = [
  ['empty (: > file)', (_k, path) => replaceFile(path, '')],
  ['truncated', (k, path) => replaceFile(path, k.truncated)],
  ['unreadable', (_k, path) => unreadable(path)],
  ['invalid', (k, path) => replaceFile(path, k.invalid)],
]

describe.each(KINDS)('$name', (kind) => {
  it.each(BREAKS.map(([name, apply], index) => ({ name, apply, index })))(
    '$name: the content in force stays; a log line and the refused counter say so',
    async ({ apply, index }) => {
      const path = join(work, kind.file)
      const before = (await refusedCount(kind.metric)) ?? 0
      const refused = bridge.waitForLog(`${kind.log} refused; keeping the old one`)
      await apply(kind, path)
      await refused
      expect(await refusedCount(kind.metric)).toBe(before + 1)
      await kind.inForce(index)
      const reloaded = bridge.waitForLog(`${kind.log} reloaded`)
      await replaceFile(path, kind.good)
      await reloaded
    },
  )
})

describe('an intentionally empty list is written explicitly', () => {
  it('identities: [] lifts every denial; gateways: [] names no gateway', async () => {
    const deny = join(work, 'deny', 'deny.yaml')
    const lifted = bridge.waitForLog('deny list reloaded')
    await replaceFile(deny, 'identities: []\n')
    await lifted
    expect(await connects('device-004')).toBe('accepted')
    const policy = join(work, 'gateways', 'policy.yaml')
    const none = bridge.waitForLog('gateway policy reloaded')
    await replaceFile(policy, 'gateways: []\n')
    await none
    expect(await registered('gateway-001-sensor-9')).toBe('NOT_AUTHORIZED')
    const back = bridge.waitForLog('gateway policy reloaded')
    await replaceFile(policy, POLICY)
    await back
  })
})

/** startWatching starts a bridge of its own on a deny list and a gateway policy, with these settings. */
async function startWatching(sets: readonly string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-watch-'))
  const files = {
    deny: join(dir, 'deny.yaml'),
    policy: join(dir, 'policy.yaml'),
    allow: join(dir, 'allow.txt'),
  }
  await replaceFile(files.deny, DENY)
  await replaceFile(files.policy, POLICY)
  await replaceFile(files.allow, ALLOW)
  const started = await startTestBridge([
    `lifecycle.denyListFile=${files.deny}`,
    `gateways.policyFile=${files.policy}`,
    ...sets,
  ])
  return { bridge: started, files }
}

const since = (b: TestBridge, from: number, msg: string): boolean =>
  b.logs.slice(from).some((l) => (JSON.parse(l) as { msg?: string }).msg === msg)

describe('each watch setting controls what its name says', () => {
  it('gateways.watch=false: the deny list is still reloaded on change; the policy waits for SIGHUP', async () => {
    const { bridge: b, files } = await startWatching(['gateways.watch=false'])
    try {
      const from = b.logs.length
      await replaceFile(files.policy, 'gateways: []\n')
      const denyReloaded = b.waitForLog('deny list reloaded')
      await replaceFile(files.deny, 'identities: [device-003]\n')
      await denyReloaded
      expect(since(b, from, 'gateway policy reloaded')).toBe(false)
      const policyReloaded = b.waitForLog('gateway policy reloaded')
      process.kill(process.pid, 'SIGHUP')
      await policyReloaded
    } finally {
      await b.stop()
    }
  })

  it('lifecycle.watchDenyList=false: the deny list waits for SIGHUP; the policy and its allow-list are watched', async () => {
    const { bridge: b, files } = await startWatching(['lifecycle.watchDenyList=false'])
    try {
      const from = b.logs.length
      await replaceFile(files.deny, 'identities: []\n')
      const allowReloaded = b.waitForLog('gateway policy reloaded')
      await replaceFile(files.allow, `${ALLOW}meter-9\n`)
      await allowReloaded
      expect(since(b, from, 'deny list reloaded')).toBe(false)
      const denyReloaded = b.waitForLog('deny list reloaded')
      process.kill(process.pid, 'SIGHUP')
      await denyReloaded
    } finally {
      await b.stop()
    }
  })
})

describe('the allow-list a gateway policy names', () => {
  it('an edit is in force without SIGHUP', async () => {
    expect(await registered('meter-7')).toBe('NOT_AUTHORIZED')
    const reloaded = bridge.waitForLog('gateway policy reloaded')
    await replaceFile(join(work, 'gateways', 'allow.txt'), `${ALLOW}meter-7\n`)
    await reloaded
    expect(await registered('meter-7')).toBe('issued')
  })
})
