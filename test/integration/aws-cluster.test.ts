import { readFile } from 'node:fs/promises'
import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { PostgresRegistry } from '../../src/registry/postgres-registry.js'
import { writeTemplates } from '../support/aws-fleet.js'
import { type CliBridge, startCliBridge } from '../support/cli-bridge.js'
import { workerOf } from '../support/cluster.js'
import { opensslCsr } from '../support/csr.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'
import { startRedis, type TestRedis } from '../support/redis.js'

// AWS fleet provisioning across processes: `serve --workers 2` sharing Redis and PostgreSQL. A create call on one
// worker, its RegisterThing on the other (the token is in the registry), the same RegisterThing on both at once
// (one activation, the same answer twice) and again on the first (its answer lost). Nothing of it crosses Redis:
// requests are consumed where they arrive, answers written to the asking connection (keys and tokens!).

let redis: TestRedis
let postgres: TestPostgres
let pki: TestPki
let bridge: CliBridge

const CSR_TOPIC = '$aws/certificates/create-from-csr/json'
const PROVISION = '$aws/provisioning-templates/FleetTemplate/provision/json'

beforeAll(async () => {
  ;[redis, postgres, pki] = await Promise.all([startRedis(), startPostgres(), createTestPki()])
  bridge = await startCliBridge(pki.stateDir, [
    '--workers',
    '2',
    '--log-level',
    'debug',
    ...['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`]
      .concat([`state.redis.url=${redis.url}`, `state.postgres.url=${postgres.url}`])
      .flatMap((s) => ['--set', s]),
  ])
}, 60_000)
afterAll(async () => {
  bridge?.process.signal('SIGTERM')
  await bridge?.process.exited
  await redis?.stop()
  await postgres?.stop()
})

let counter = 0

/** Connection is one MQTT.js connection of a device, on the worker node:cluster handed it to. */
interface Connection {
  readonly client: MqttClient
  readonly worker: number
  call(topic: string, body: object): Promise<{ topic: string; body: Record<string, unknown> }>
}

async function connect(files: { certFile: string; keyFile: string }): Promise<Connection> {
  const clientId = `aws${process.pid}-${counter++}`
  const client = await mqtt.connectAsync(bridge.url, {
    cert: await readFile(files.certFile, 'utf8'),
    key: await readFile(files.keyFile, 'utf8'),
    ca: await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
    clientId,
    reconnectPeriod: 0,
    protocolVersion: 4,
  })
  const worker = await workerOf(bridge, clientId)
  return {
    client,
    worker,
    async call(topic, body) {
      await client.subscribeAsync([`${topic}/accepted`, `${topic}/rejected`], { qos: 1 })
      const answer = new Promise<{ topic: string; body: Record<string, unknown> }>((resolve) =>
        client.once('message', (t, payload) => resolve({ topic: t, body: JSON.parse(String(payload)) })),
      )
      await client.publishAsync(topic, JSON.stringify(body), { qos: 1 })
      return answer
    },
  }
}

/** connectElsewhere connects until node:cluster hands the connection to a worker other than `not`. */
async function connectElsewhere(
  files: { certFile: string; keyFile: string },
  not: number,
): Promise<Connection> {
  for (let i = 0; i < 10; i++) {
    const c = await connect(files)
    if (c.worker !== not) return c
    await c.client.endAsync(true)
  }
  throw new Error('node:cluster never handed a connection to the other worker')
}

describe('AWS fleet provisioning with two workers (Redis, PostgreSQL)', () => {
  it('RegisterThing on the other worker; at once on both: one activation, the same answer; again: the same', async () => {
    const watcher = new Redis(redis.url)
    const channels: string[] = []
    watcher.on('pmessage', (_pattern: string, channel: string) => channels.push(channel))
    await watcher.psubscribe('*')
    const files = await pki.makeDevice('device-cluster')
    const { csr } = await opensslCsr('/CN=device-cluster')
    const first = await connect(files)
    const second = await connectElsewhere(files, first.worker)
    try {
      const created = await first.call(CSR_TOPIC, { certificateSigningRequest: csr })
      expect(created.topic).toBe(`${CSR_TOPIC}/accepted`)
      const body = {
        certificateOwnershipToken: created.body.certificateOwnershipToken,
        parameters: { SerialNumber: 'SN-42' },
      }
      const [a, b] = await Promise.all([second.call(PROVISION, body), first.call(PROVISION, body)])
      expect(a).toEqual({
        topic: `${PROVISION}/accepted`,
        body: { thingName: 'device-cluster', deviceConfiguration: { site: 'factory-1', serial: 'SN-42' } },
      })
      expect(b).toEqual(a)
      expect(await first.call(PROVISION, body)).toEqual(a)
      const other = await second.call(PROVISION, { ...body, parameters: { SerialNumber: 'SN-43' } })
      expect(other.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      const registry = await PostgresRegistry.open(postgres.url)
      try {
        const device = await registry.device('device-cluster')
        expect(device?.certificates.map((c) => [c.state, c.provisioning?.thingName])).toEqual([
          ['active', 'device-cluster'],
        ])
      } finally {
        await registry.close()
      }
      expect(channels.filter((c) => c.includes('$aws'))).toEqual([])
    } finally {
      watcher.disconnect()
      await Promise.all([first.client.endAsync(true), second.client.endAsync(true)])
    }
  })
})
