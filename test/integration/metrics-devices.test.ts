import { open, stat } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PostgresRegistry } from '../../src/registry/postgres-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { scrapeMetrics } from '../support/metrics.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'

/**
 * mqtt_registration_bridge_devices{state} comes from counts kept current apart from scrapes: a scrape never reads
 * the registry. Shown on a real PostgreSQL that logs every statement it runs, shared by two bridges (replicas).
 */
const DEVICES = 'mqtt_registration_bridge_devices'
const STATES = ['active', 'expiring', 'expired', 'pending', 'revoked'] as const
let postgres: TestPostgres
let a: TestBridge
let b: TestBridge | undefined

beforeAll(async () => {
  postgres = await startPostgres(['log_statement=all'])
  a = await startTestBridge([`state.postgres.url=${postgres.url}`])
}, 60_000)
afterAll(async () => {
  await b?.stop()
  await a?.stop()
  await postgres?.stop()
})

const devices = async (bridge: TestBridge): Promise<Record<string, number | undefined>> => {
  const scrape = await scrapeMetrics(bridge.bridge.healthPort as number)
  return Object.fromEntries(STATES.map((state) => [state, scrape.sample(DEVICES, { state })]))
}

/** statementsSince reads what PostgreSQL logged after `offset` bytes of its log. */
async function statementsSince(offset: number): Promise<string> {
  const file = await open(postgres.logFile, 'r')
  try {
    const { size } = await file.stat()
    const buffer = Buffer.alloc(size - offset)
    await file.read(buffer, 0, buffer.length, offset)
    return buffer.toString('utf8')
  } finally {
    await file.close()
  }
}

describe('the devices gauge', () => {
  it('a fresh bridge exports every state at 0, and twenty scrapes read nothing from the registry', async () => {
    await expect
      .poll(() => devices(a), { timeout: 10_000 })
      .toEqual({
        active: 0,
        expiring: 0,
        expired: 0,
        pending: 0,
        revoked: 0,
      })
    const { size: offset } = await stat(postgres.logFile)
    for (let i = 0; i < 20; i++) await devices(a)
    const logged = await statementsSince(offset)
    // neither the whole-registry read (list) nor more than the one count health.deviceCountsSeconds may bring
    expect(logged.match(/FROM devices d JOIN LATERAL \(\s+SELECT serial/g) ?? []).toEqual([])
    expect((logged.match(/count\(\*\) FILTER/g) ?? []).length).toBeLessThanOrEqual(1)
  })

  it('an issuance shows on its bridge at once; a replica sharing PostgreSQL counts it and a revocation by another process within its interval', async () => {
    b = await startTestBridge([`state.postgres.url=${postgres.url}`, 'health.deviceCountsSeconds=0.5'])
    await expect.poll(() => devices(b as TestBridge), { timeout: 10_000 }).toMatchObject({ active: 0 })
    const device = await connectDevice(a, 'device-001')
    await device.send({ requestId: 'counted' })
    expect((await device.nextReply()).status).toBe('issued')
    await device.end()
    await expect.poll(() => devices(a), { timeout: 5_000 }).toMatchObject({ active: 1, revoked: 0 })
    await expect.poll(() => devices(b as TestBridge), { timeout: 5_000 }).toMatchObject({ active: 1 })
    // `registration-bridge revoke` is another process with its own connection
    const cli = await PostgresRegistry.open(postgres.url)
    const [summary] = await cli.list()
    expect(await cli.revoke(summary?.serialNumber ?? '', { at: new Date(), reason: 'keyCompromise' })).toBe(
      true,
    )
    await cli.close()
    await expect
      .poll(() => devices(b as TestBridge), { timeout: 5_000 })
      .toEqual({ active: 0, expiring: 0, expired: 0, pending: 0, revoked: 1 })
  })
})
