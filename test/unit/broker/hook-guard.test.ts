import { createServer, type Server } from 'node:net'
import { Writable } from 'node:stream'
import { Aedes, type Client } from 'aedes'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { guardHook } from '../../../src/broker/hook-guard.js'
import { createLogger } from '../../../src/logger.js'

/** A real Aedes whose authenticate hook throws for one client id: the last-resort guard must contain it. */
let server: Server
let aedes: Aedes
let port: number
const logs: string[] = []

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk))
      done()
    },
  })
  const logger = createLogger('info', sink)
  const authenticate = (
    client: Client,
    _u: string | undefined,
    _p: Buffer | undefined,
    done: (err: null, ok: boolean) => void,
  ): void => {
    if (client.id === 'poison') throw new TypeError('a certificate nobody expected')
    done(null, true)
  }
  aedes = await Aedes.createBroker({ authenticate: guardHook('authenticate', authenticate, logger) })
  server = createServer((socket) => aedes.handle(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  port = (server.address() as { port: number }).port
})

afterAll(async () => {
  server.close()
  await new Promise<void>((resolve) => aedes.close(() => resolve()))
})

it('an exception in a hook ends that connection, is logged, and the broker keeps serving', async () => {
  const poison = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'poison', reconnectPeriod: 0 })
  poison.on('error', () => {})
  const refused = await new Promise<string>((resolve) => {
    poison.once('connect', () => resolve('connected'))
    poison.once('close', () => resolve('closed'))
  })
  poison.end(true)
  expect(refused).toBe('closed')
  expect(logs.join('')).toMatch(
    /"hook":"authenticate".*a certificate nobody expected.*unexpected error in a connection/,
  )
  const healthy = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: 'fine',
    reconnectPeriod: 0,
  })
  expect(healthy.connected).toBe(true)
  await healthy.endAsync()
})
