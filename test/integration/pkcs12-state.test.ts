import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { register } from '../../src/client/index.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { opensslPkcs12 } from '../support/pkcs12.js'
import { createTestPki } from '../support/pki.js'
import { redisContents, startRedis, type TestRedis } from '../support/redis.js'

// Bundles where state outlives a request: a retry after a restart (the registry, not the reply cache, knows the
// request), and shared sessions in Redis, which never hold a key, in a bundle or not.

const bridges: TestBridge[] = []
let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  for (const b of bridges) await b.stop()
  await redis?.stop()
})

async function started(sets: string[], pki?: Parameters<typeof startTestBridge>[1]): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

interface AuditLine {
  identity: string
  serialNumber: string
  supersedes?: string
}

describe('a retry after a restart', () => {
  it('gets a new certificate that supersedes the first (its key died with the process), in a bundle with the retry’s password', async () => {
    const pki = await createTestPki()
    const before = await started([], pki)
    const ask = (b: TestBridge, password: string) =>
      register({
        url: b.url,
        ...tlsFor(b, b.pki.device('device-001')),
        requestId: 'restart-1',
        pkcs12Password: password,
      })
    const first = await ask(before, 'first-password')
    await before.stop()
    const after = await started([], pki)
    const retry = await ask(after, 'retry-password')
    expect(retry.serialNumber).not.toBe(first.serialNumber)
    expect((await opensslPkcs12(retry.pkcs12, 'retry-password')).code).toBe(0)
    expect((await opensslPkcs12(retry.pkcs12, 'first-password')).code).not.toBe(0)
    const audit = (await after.auditLines()).map((l) => JSON.parse(l) as AuditLine)
    expect(
      audit.filter((a) => a.identity === 'device-001').map((a) => [a.serialNumber, a.supersedes]),
    ).toEqual([
      [first.serialNumber, undefined],
      [retry.serialNumber, first.serialNumber],
    ])
    for (const text of [after.logs.join('\n'), (await after.auditLines()).join('\n')])
      for (const password of ['first-password', 'retry-password']) expect(text).not.toContain(password)
  })
})

describe('sessions in Redis (state.redis.url)', () => {
  it('a bundle for a persistent session that went offline is never written to Redis, nor a PEM key', async () => {
    const b = await started([`state.redis.url=${redis.url}`, 'registration.pendingAfterMs=1'])
    const password = 'offline-bundle-password'
    // each subscribes in a persistent session, asks, and goes away before its answer
    for (const [id, body] of [
      ['device-002', { requestId: 'o-1', keyAlgorithm: 'RSA-2048', pkcs12: { password } }],
      ['device-003', { requestId: 'o-2', keyAlgorithm: 'RSA-2048' }],
    ] as const) {
      const tls = tlsFor(b, b.pki.device(id))
      const client = await mqtt.connectAsync(b.url, {
        cert: tls.certPem,
        key: tls.keyPem,
        ca: tls.caPem,
        clientId: `${id}-session`,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 0,
      })
      await client.subscribeAsync(`registration/${id}/reply`, { qos: 1 })
      const pending = new Promise<void>((resolve) => client.on('message', () => resolve()))
      await client.publishAsync('registration/request', JSON.stringify(body), { qos: 1 })
      await pending // key generation under way
      await client.endAsync(true)
    }
    await expect.poll(() => b.logs.filter((l) => l.includes('"certificate issued"')).length).toBe(2)
    const stored = await redisContents(redis.url)
    expect(stored).not.toContain(password)
    expect(stored).not.toContain('pkcs12')
    expect(stored).not.toContain('PRIVATE KEY')
    // the scan read these sessions: their subscriptions are in Redis
    expect(stored).toContain('registration/device-002/reply')
  })
})
