import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:tls'
import { Aedes } from 'aedes'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MalformedReplyError, type RegisterOptions, register } from '../../src/client/index.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname
/** Far longer than any test: a client that waits for it instead of the answer it already has fails the test. */
const NEVER = 600_000

let bridge: TestBridge
/** A misbehaving bridge: a plain Aedes on the same PKI that answers every request with `answer`. */
let liar: { server: Server; aedes: Aedes; url: string }
let answer = 'not json'

beforeAll(async () => {
  bridge = await startTestBridge()
  const aedes = await Aedes.createBroker()
  aedes.on('publish', (packet, client) => {
    if (!client || packet.topic !== 'registration/request') return
    aedes.publish(
      {
        cmd: 'publish',
        topic: 'registration/device-001/reply',
        payload: answer,
        qos: 1,
        retain: false,
        dup: false,
      },
      () => {},
    )
  })
  const server = createServer(
    {
      cert: await readFile(bridge.pki.file('server.crt'), 'utf8'),
      key: await readFile(bridge.pki.file('server.key'), 'utf8'),
      ca: await readFile(bridge.pki.file('factory-ca.crt'), 'utf8'),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => aedes.handle(socket),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  liar = { server, aedes, url: `mqtts://localhost:${(server.address() as { port: number }).port}` }
})

afterAll(async () => {
  liar?.server.close()
  await new Promise<void>((resolve) => (liar ? liar.aedes.close(() => resolve()) : resolve()))
  await bridge?.stop()
})

const options = (url: string, id = 'device-001'): RegisterOptions => ({
  url,
  ...tlsFor(bridge, bridge.pki.device(id)),
  timeoutMs: NEVER,
})

describe('register ends at once, with a clear error, when the answer is already known', () => {
  it.each([
    ['not json', /not JSON/],
    ['[1]', /not a JSON object/],
    ['{"status":"issued","requestId":"x"}', /malformed "issued" reply/],
    ['{"status":"rejected","error":"nope"}', /malformed "rejected" reply/],
  ])('a malformed reply %s', async (payload, message) => {
    answer = payload
    const err = await register({ ...options(liar.url), requestId: 'x' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MalformedReplyError)
    expect((err as Error).message).toMatch(message)
  })

  it('a refused subscription (SUBACK 0x80)', async () => {
    await expect(register({ ...options(bridge.url), identity: 'device-002' })).rejects.toThrow(
      /refused the subscription to registration\/device-002\/reply \(SUBACK 0x80\)/,
    )
  })

  it('a refused connection', async () => {
    const files = await bridge.pki.makeDevice('odd', { commonName: 'not a valid id!' })
    await expect(
      register({ ...options(bridge.url), ...tlsFor(bridge, files), identity: 'odd' }),
    ).rejects.toThrow(/Not authorized|closed before CONNACK/i)
  })
})

describe('the register command', () => {
  it.each([['abc'], ['0'], ['-5'], ['']])('refuses --timeout %j with exit 2', async (value) => {
    const result = await run('node', [cli, 'register', '--device', 'device-001', `--timeout=${value}`])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--timeout must be a positive number')
  })

  it('exits 1 at once on a malformed reply, leaving no timer behind', async () => {
    answer = '{"status":"issued"}'
    const result = await run(
      'node',
      [
        ...[cli, 'register', '--url', liar.url, '--state-dir', bridge.pki.stateDir],
        ...['--device', 'device-001', '--timeout', String(NEVER / 1000)],
      ],
      { timeoutMs: 20_000 },
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^error: the bridge sent a malformed "issued" reply$/m)
  })
})
