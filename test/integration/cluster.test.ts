import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import { PostgresRegistry } from '../../src/registry/postgres-registry.js'
import { type CliBridge, startCliBridge } from '../support/cli-bridge.js'
import {
  auditByIdentity,
  childPids,
  issuedOnce,
  makeClusterDevices,
  Occurrences,
  openSession,
  registerWithRetries,
  workerOf,
} from '../support/cluster.js'
import { writePolicy } from '../support/gateway.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'
import { redisContents, startRedis, type TestRedis } from '../support/redis.js'
import { run } from '../support/tools.js'

/**
 * Workers on one port sharing a real redis-server: node:cluster hands each connection to one of two bridge
 * processes; leases, answers, rate limits and MQTT sessions live in Redis.
 */
let redis: TestRedis
let postgres: TestPostgres
let pki: TestPki
let bridge: CliBridge | undefined
let prefix = 0
const repo = new URL('../../', import.meta.url).pathname

beforeAll(async () => {
  ;[redis, postgres, pki] = await Promise.all([startRedis(), startPostgres(), createTestPki()])
}, 60_000)
afterAll(async () => {
  await redis?.stop()
  await postgres?.stop()
})
afterEach(async () => {
  bridge?.process.signal('SIGKILL')
  await bridge?.process.exited
  bridge = undefined
})

const startWorkers = (sets: string[] = []): Promise<CliBridge> =>
  startCliBridge(pki.stateDir, [
    '--workers',
    '2',
    '--log-level',
    'debug',
    '--set',
    `state.redis.url=${redis.url}`,
    '--set',
    `state.postgres.url=${postgres.url}`,
    '--set',
    `state.redis.keyPrefix=t${prefix++}:`,
    '--set',
    'state.leaseMs=2000',
    '--set',
    'registration.rateLimit.burst=1000',
    ...sets.flatMap((s) => ['--set', s]),
  ])

/** sessionOn opens connections until one lands on a worker other than `not` (round robin: the next one). */
async function sessionOnAnotherWorker(b: CliBridge, device: Parameters<typeof openSession>[1], not: number) {
  for (let i = 0; i < 10; i++) {
    const session = await openSession(b, device, false)
    if ((await workerOf(b, session.clientId)) !== not) return session
    await session.client.endAsync(true)
  }
  throw new Error('node:cluster never handed a connection to the other worker')
}

describe('serve --workers 2 with state.redis.url', () => {
  it.each(['csr', 'server-key'] as const)(
    'a device that disconnects mid-issuance and asks the other worker gets exactly one answer (%s)',
    async (mode) => {
      bridge = await startWorkers(['registration.pendingAfterMs=1'])
      const b = bridge
      const extra = mode === 'server-key' ? { keyAlgorithm: 'RSA-3072' } : {}
      const [device] = await makeClusterDevices(pki, `mid-${mode}`, 1, mode, extra)
      if (!device) throw new Error('no device')
      const first = await openSession(b, device)
      const firstWorker = await workerOf(b, first.clientId)
      await Promise.race([first.pending, first.next(10_000)]) // the issuance has started
      await first.client.endAsync(true)
      const second = await sessionOnAnotherWorker(b, device, firstWorker)
      await second.client.publishAsync('registration/request', device.payload, { qos: 1 })
      const answer = await second.next(15_000)
      expect(answer?.status).toBe('issued')
      expect(await second.next(500)).toBeUndefined() // and no second answer
      await second.client.endAsync()
      const records = (await auditByIdentity(pki.stateDir)).get(device.id) ?? []
      if (mode === 'csr') expect(records).toHaveLength(1)
      else {
        // a generated key never leaves the process that made it but in transit: when it finished before the
        // device came back, the key is gone and the new certificate names the one it replaces
        expect(records.length).toBeLessThanOrEqual(2)
        if (records.length === 2) expect(records[1]?.supersedes).toBe(records[0]?.serialNumber)
      }
      if (answer?.status === 'issued') expect(answer.serialNumber).toBe(records.at(-1)?.serialNumber)
    },
  )

  it('rate limits hold across the workers', async () => {
    bridge = await startWorkers([
      'registration.rateLimit.burst=2',
      'registration.rateLimit.perMinute=1',
      'lifecycle.reRegistration=allow', // four registrations of one identity: only the rate limit refuses
    ])
    const b = bridge
    const [device] = await makeClusterDevices(pki, 'limited', 1, 'csr')
    if (!device) throw new Error('no device')
    const workers = new Set<number>()
    const outcomes: string[] = []
    for (let i = 0; i < 4; i++) {
      const payload = JSON.stringify({ ...JSON.parse(device.payload), requestId: `limited-${i}` })
      const session = await openSession(b, { ...device, payload })
      workers.add(await workerOf(b, session.clientId))
      const reply = await session.next(10_000)
      outcomes.push(reply?.status === 'rejected' ? reply.error.code : (reply?.status ?? 'none'))
      await session.client.endAsync()
    }
    expect(workers.size).toBe(2) // the requests went to both workers
    expect(outcomes).toEqual(['issued', 'issued', 'RATE_LIMITED', 'RATE_LIMITED'])
  })

  it("a gateway's quota rate holds across the workers", async () => {
    const [gateway] = await makeClusterDevices(pki, 'quota-gw', 1, 'server-key')
    if (!gateway) throw new Error('no gateway')
    const policy = await writePolicy(
      `${[
        'gateways:',
        `  - match: ${gateway.id}`,
        '    devices:',
        `      patterns: ["${gateway.id}-s-*"]`,
        '    quota:',
        '      perMinute: 1',
        '      burst: 2',
      ].join('\n')}\n`,
    )
    bridge = await startWorkers([`gateways.policyFile=${policy}`])
    const b = bridge
    const workers = new Set<number>()
    const outcomes: string[] = []
    // one device per batch, each batch on a new connection: node:cluster hands them to both workers in turn
    for (let i = 0; i < 4; i++) {
      const batch = {
        version: 1,
        extension: 'gateway/1',
        requestId: `quota-${i}`,
        devices: [{ deviceId: `${gateway.id}-s-${i}` }],
      }
      const session = await openSession(b, { ...gateway, payload: JSON.stringify(batch) })
      workers.add(await workerOf(b, session.clientId))
      const reply = (await session.next(10_000)) as (Reply & { deviceId?: string }) | undefined
      expect(reply?.deviceId).toBe(`${gateway.id}-s-${i}`)
      outcomes.push(reply?.status === 'rejected' ? reply.error.code : (reply?.status ?? 'none'))
      await session.client.endAsync()
    }
    expect(workers.size).toBe(2)
    expect(outcomes).toEqual(['issued', 'issued', 'RATE_LIMITED', 'RATE_LIMITED'])
  })

  it.each(['csr', 'server-key'] as const)(
    'SIGKILL of a worker during 100 concurrent registrations: every request answered exactly once (%s)',
    async (mode) => {
      bridge = await startWorkers(['log.level=info'])
      const b = bridge
      const devices = await makeClusterDevices(pki, `kill-${mode}`, 100, mode)
      const issuedSome = b.process.waitFor(new Occurrences('"certificate issued"', 10))
      const results = Promise.all(devices.map((d) => registerWithRetries(b, d, 1500, Date.now() + 20_000)))
      await issuedSome
      const [victim] = await childPids(b.process.pid ?? 0)
      if (victim === undefined) throw new Error('no worker')
      process.kill(victim, 'SIGKILL')
      const replies = await results
      expect(b.process.output()).toMatch(/worker \d died \(SIGKILL\); replacing it/)
      const { problems, linked } = await issuedOnce(pki.stateDir, devices, replies)
      expect(problems).toEqual([])
      // a CSR-mode answer is shared: a retry anywhere gets the same certificate; a generated key is not
      if (mode === 'csr') expect(linked).toBe(0)
      // the shared registry (PostgreSQL) has every audited certificate, and the device's answer is the active
      // one; a certificate it has beyond the audit log was made by a worker killed before answering: superseded
      const registry = await PostgresRegistry.open(postgres.url)
      const audit = await auditByIdentity(pki.stateDir)
      for (const [i, d] of devices.entries()) {
        const certificates = (await registry.device(d.id))?.certificates ?? []
        const serials = certificates.map((c) => c.serialNumber)
        for (const r of audit.get(d.id) ?? []) expect(serials, d.id).toContain(r.serialNumber)
        const answer = replies[i]?.at(-1)
        const active = certificates.filter((c) => c.state === 'active')
        expect(
          active.map((c) => c.serialNumber),
          d.id,
        ).toEqual(answer?.status === 'issued' ? [answer.serialNumber] : [])
      }
      await registry.close()
    },
  )

  it('Redis restarted mid-load: retryable errors, never a wrong answer, and service resumes', async () => {
    bridge = await startWorkers(['log.level=info', 'state.redis.commandTimeoutMs=500'])
    const b = bridge
    const devices = await makeClusterDevices(pki, 'redis-down', 100, 'csr')
    const issuedSome = b.process.waitFor(new Occurrences('"certificate issued"', 10))
    // a generous deadline: alone this test takes seconds, beside the rest of the suite its first issuances alone
    // can take ten, and what is checked is that every device is answered once Redis is back, not how fast
    const ask = (some: typeof devices) =>
      Promise.all(some.map((d) => registerWithRetries(b, d, 1500, Date.now() + 45_000)))
    const early = ask(devices.slice(0, 80))
    await issuedSome
    await redis.stop()
    // the last 20 ask while Redis is down (the first 80 may all be answered by then): there is traffic to refuse
    const late = ask(devices.slice(80))
    await b.process.waitFor(/ISSUER_UNAVAILABLE|Redis \(MQTT sessions\) unavailable/)
    await redis.restart()
    const replies = [...(await early), ...(await late)]
    const rejections = replies.flat().filter((r) => r.status === 'rejected')
    for (const r of rejections) if (r.status === 'rejected') expect(r.error.retryable).toBe(true)
    const { problems } = await issuedOnce(pki.stateDir, devices, replies)
    // a Redis that lost its keys forgets answers and leases: a certificate may then be issued again (linked
    // or not, even after the device was answered, by a retry already on its way), but a device never gets an
    // answer that is not its own, and every device gets one
    const issuedAgain = (p: string): boolean => {
      const m = /answered (\w+), audit has ([\w,]+)/.exec(p)
      return !!m && (m[2] ?? '').split(',').includes(m[1] ?? '')
    }
    expect(problems.filter((p) => !/not linked/.test(p) && !issuedAgain(p))).toEqual([])
  }, 90_000) // the devices' own deadlines are 45 s from their first try, and Redis restarts in between

  it('a worker that dies is replaced; a device connected to the other keeps its connection and is answered', async () => {
    bridge = await startWorkers()
    const b = bridge
    const [device] = await makeClusterDevices(pki, 'survivor', 1, 'csr')
    if (!device) throw new Error('no device')
    const session = await openSession(b, device, false)
    const mine = await workerOf(b, session.clientId)
    const pidOf = (slot: number) =>
      Number(
        new RegExp(`"worker":${slot},"pid":(\\d+)[^\\n]*"msg":"bridge listening"`).exec(
          b.process.output(),
        )?.[1],
      )
    process.kill(pidOf(1 - mine), 'SIGKILL')
    await b.process.waitFor(new RegExp(`worker ${1 - mine} died \\(SIGKILL\\); replacing it`))
    await b.process.waitFor(new Occurrences('"msg":"bridge listening"', 3)) // the replacement listens
    expect(session.client.connected).toBe(true)
    await session.client.publishAsync('registration/request', device.payload, { qos: 1 })
    expect((await session.next(10_000))?.status).toBe('issued')
    await session.client.endAsync()
  })

  it("a request (and Aedes' unheard announcements) never crosses Redis; its reply does (to whichever process holds the device)", async () => {
    bridge = await startWorkers()
    const b = bridge
    const watcher = new Redis(redis.url)
    const channels: string[] = []
    watcher.on('pmessage', (_pattern: string, channel: string) => channels.push(channel))
    await watcher.psubscribe('*')
    try {
      for (const device of await makeClusterDevices(pki, 'no-request-in-redis', 2, 'csr')) {
        const session = await openSession(b, device)
        expect((await session.next(10_000))?.status).toBe('issued')
        await session.client.endAsync()
      }
      expect(channels.filter((c) => c.endsWith('/reply'))).toHaveLength(2)
      expect(channels).not.toContain('registration/request')
      // Aedes' announcements that nobody hears stay home; the one it listens for (a client id taken) crosses
      expect(channels.filter((c) => /\/(new\/(un)?subscribes|disconnect\/clients)$/.test(c))).toEqual([])
      expect(channels.filter((c) => c.endsWith('/new/clients'))).toHaveLength(2)
    } finally {
      watcher.disconnect()
    }
  })

  it('/metrics shows the whole group, whichever worker the scrape reaches', async () => {
    bridge = await startWorkers(['health.enabled=true', 'health.port=0', 'health.host=127.0.0.1'])
    const b = bridge
    await b.process.waitFor(new Occurrences('"msg":"bridge listening"', 2))
    const healthPort = /"healthPort":(\d+)/.exec(b.process.output())?.[1]
    const devices = await makeClusterDevices(pki, 'group-metrics', 6, 'csr')
    const workers = new Set<number>()
    for (const device of devices) {
      const session = await openSession(b, device)
      workers.add(await workerOf(b, session.clientId))
      expect((await session.next(10_000))?.status).toBe('issued')
      await session.client.endAsync()
    }
    expect(workers.size).toBe(2) // the registrations were answered by both workers
    const issued = (body: string): number =>
      [
        ...body.matchAll(
          /^mqtt_registration_bridge_registrations_total\{[^}]*outcome="issued"[^}]*\} (\d+)/gm,
        ),
      ]
        .map((m) => Number(m[1]))
        .reduce((a, n) => a + n, 0)
    // a scrape reaches one worker at a time (node:cluster round robin): each sees all six
    for (let i = 0; i < 4; i++) {
      const body = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text()
      expect(issued(body)).toBe(6)
      expect(body).toMatch(/^mqtt_registration_bridge_ready 1$/m)
    }
  })

  it('SIGTERM stops every worker and the primary exits 0', async () => {
    bridge = await startWorkers()
    const b = bridge
    b.process.signal('SIGTERM')
    expect(await b.process.exited).toBe(0)
    expect(b.process.output().match(/"msg":"bridge stopped"/g)).toHaveLength(2)
  })

  it('more than one worker without Redis is refused at start', async () => {
    const refused = await run('node', [
      join(repo, 'dist/cli.js'),
      'serve',
      '--workers',
      '2',
      '--state-dir',
      pki.stateDir,
    ])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('state.workers: more than 1 worker needs state.redis.url')
  })

  it('a generated private key is never written to Redis, even for a persistent session that went offline', async () => {
    bridge = await startWorkers(['registration.pendingAfterMs=1'])
    const b = bridge
    const keyPrefix = `t${prefix - 1}:`
    const [keyDevice] = await makeClusterDevices(pki, 'offline-key', 1, 'server-key', {
      keyAlgorithm: 'RSA-2048',
    })
    const [csrDevice] = await makeClusterDevices(pki, 'offline-csr', 1, 'csr')
    if (!keyDevice || !csrDevice) throw new Error('no device')
    // each subscribes in a persistent session, asks, and goes away before its answer
    for (const device of [keyDevice, csrDevice]) {
      const client = await mqtt.connectAsync(b.url, {
        ...device.tls,
        clientId: `${device.id}-session`,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 0,
        rejectUnauthorized: false,
      })
      await client.subscribeAsync(`registration/${device.id}/reply`, { qos: 1 })
      const pending = new Promise<void>((resolve) => client.on('message', () => resolve()))
      await client.publishAsync('registration/request', device.payload, { qos: 1 })
      if (device === keyDevice) await pending // key generation under way
      await client.endAsync(true)
    }
    await b.process.waitFor(new Occurrences('"certificate issued"', 2))
    const everything = await redisContents(redis.url)
    // the CSR device's certificate waits for its session in Redis: the scan sees what is stored there
    await expect.poll(async () => (await redisContents(redis.url)).includes('BEGIN CERTIFICATE')).toBe(true)
    expect(everything).not.toContain('PRIVATE KEY')
    expect(await redisContents(redis.url)).not.toContain('PRIVATE KEY')
    expect(everything).toContain(keyPrefix) // the bridge's own keys were scanned too
  })
})
