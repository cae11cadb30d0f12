import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startBridge } from '../../src/app/start.js'
import { loadConfig } from '../../src/config/load.js'
import { createLogger } from '../../src/logger.js'
import { serveArgs } from '../support/cli-bridge.js'
import { childPids } from '../support/cluster.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { freePort } from '../support/ports.js'
import { type Running, start } from '../support/process.js'
import { clientCounter, startRedis, type TestRedis } from '../support/redis.js'

/**
 * A start that fails, in any process mode, exits non-zero with nothing left running: one process or a primary
 * with workers, whichever store (Redis, PostgreSQL) is unreachable or whatever setting is bad. Before, two
 * workers that could not reach Redis logged the error and stayed up — nothing listening, SIGTERM ignored.
 */
let pki: TestPki
let redis: TestRedis
let closedPort: number
const running: Running[] = []

beforeAll(async () => {
  ;[pki, redis, closedPort] = await Promise.all([createTestPki(), startRedis(), freePort()])
}, 60_000)
afterAll(async () => {
  await redis?.stop()
})
afterEach(async () => {
  // whatever a failed test left: the whole process group (the primary and its workers), then wait
  for (const p of running.splice(0)) {
    if (p.pid !== undefined && groupAlive(p.pid)) process.kill(-p.pid, 'SIGKILL')
    await p.exited
  }
})

/** groupAlive: is any process of the group the serve process leads (it and its workers) still there? */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

function serve(args: readonly string[]): Running {
  const child = start('node', serveArgs(pki.stateDir, args), { group: true })
  running.push(child)
  return child
}

/** exitCode waits for the exit (an event), failing the test if it has not come within `ms`. */
async function exitCode(p: Running, ms = 20_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${p.output()}`)), ms)
  })
  try {
    return await Promise.race([p.exited, bound])
  } finally {
    clearTimeout(timer)
  }
}

const redisDown = () => ['--set', `state.redis.url=redis://127.0.0.1:${closedPort}`]
const postgresDown = () => [
  '--set',
  `state.postgres.url=postgres://postgres@127.0.0.1:${closedPort}/postgres`,
]

describe('serve: a start that fails exits non-zero, nothing left running', () => {
  it.each([
    ['Redis unreachable, one process', () => ['--workers', '1', ...redisDown()], /cannot reach Redis/],
    ['Redis unreachable, two workers', () => ['--workers', '2', ...redisDown()], /cannot reach Redis/],
    [
      'PostgreSQL unreachable, one process',
      () => ['--workers', '1', ...postgresDown()],
      /cannot open the registry/,
    ],
    [
      'PostgreSQL unreachable, two workers',
      () => ['--workers', '2', '--set', `state.redis.url=${redis.url}`, ...postgresDown()],
      /cannot open the registry/,
    ],
  ])('%s', async (_name, args, error) => {
    const bridge = serve(args())
    expect(await exitCode(bridge)).not.toBe(0)
    expect(bridge.output()).toMatch(error)
    expect(bridge.output()).not.toMatch(/Bridge listening/)
    expect(groupAlive(bridge.pid as number)).toBe(false)
  })

  it('a bad setting found after Redis is connected (the gateway policy): two workers exit, nothing left', async () => {
    const policy = join(pki.dir, 'bad-policy.yaml')
    await writeFile(policy, 'gateways: [ { match: 7 } ]\n')
    const bridge = serve([
      '--workers',
      '2',
      '--set',
      `state.redis.url=${redis.url}`,
      '--set',
      `gateways.policyFile=${policy}`,
    ])
    expect(await exitCode(bridge)).not.toBe(0)
    expect(bridge.output()).toMatch(/gateways\.policyFile/)
    expect(groupAlive(bridge.pid as number)).toBe(false)
  })

  it('a replacement worker that cannot start (Redis gone) stops the primary, instead of respawning forever', async () => {
    const own = await startRedis()
    try {
      const bridge = serve(['--workers', '2', '--set', `state.redis.url=${own.url}`])
      await bridge.waitFor(/Bridge listening on mqtts:\/\/\S+ \(2 workers\)/)
      const [worker] = await childPids(bridge.pid as number)
      await own.stop()
      process.kill(worker as number, 'SIGKILL')
      expect(await exitCode(bridge)).not.toBe(0)
      expect(bridge.output()).toMatch(/failed to start/)
      expect(groupAlive(bridge.pid as number)).toBe(false)
    } finally {
      await own.stop()
    }
  })
})

describe('startBridge: a failed start closes what it opened', () => {
  it('a ConfigError after Redis is connected leaves no connection to Redis open', async () => {
    const admin = clientCounter(redis.url)
    const clients = admin.count
    const before = await clients()
    const policy = join(pki.dir, 'bad-policy-2.yaml')
    await writeFile(policy, 'gateways: [ { match: 7 } ]\n')
    const config = loadConfig({
      sets: [
        'listen.host=127.0.0.1',
        'listen.port=0',
        'health.enabled=false',
        `stateDir=${pki.stateDir}`,
        `state.redis.url=${redis.url}`,
        `gateways.policyFile=${policy}`,
      ],
    })
    await expect(startBridge(config, createLogger('silent'))).rejects.toThrow(/gateways\.policyFile/)
    await expect.poll(clients, { timeout: 5_000 }).toBe(before)
    admin.close()
  })
})
