import { generateKeyPair } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/register.js'
import type { Reply } from '../../src/protocol/messages.js'
import { startCliBridge } from '../support/cli-bridge.js'
import { writePolicy } from '../support/gateway.js'
import { createTestPki } from '../support/pki.js'
import { freePort } from '../support/ports.js'
import { start } from '../support/process.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname

async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return { server, port: (server.address() as { port: number }).port }
}

/** canBind is true when nothing listens on the port any more. */
async function canBind(port: number): Promise<boolean> {
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

describe('serve: clean start', () => {
  it.each([
    ['listen.port', (busy: number, free: number) => ['--port', String(busy), '--set', `health.port=${free}`]],
    ['health.port', (busy: number, free: number) => ['--port', String(free), '--set', `health.port=${busy}`]],
  ])(
    'a %s that cannot bind: one clear error naming it, exit 1, nothing left listening',
    async (setting, ports) => {
      const dir = await mkdtemp(join(tmpdir(), 'mrb-bind-'))
      const { server, port: busy } = await occupy()
      const free = await freePort()
      try {
        const serve = start('node', [
          ...[cli, 'serve', '--state-dir', dir, '--host', '127.0.0.1', '--set', 'health.host=127.0.0.1'],
          ...ports(busy, free),
        ])
        expect(await serve.exited).toBe(1)
        const errors = serve
          .output()
          .split('\n')
          .filter((l) => l.startsWith('error:'))
        expect(errors).toEqual([`error: ${setting}: cannot listen on 127.0.0.1:${busy} (EADDRINUSE)`])
        expect(await canBind(free)).toBe(true)
      } finally {
        server.close()
      }
    },
  )

  it('on the development PKI it warns, at warn level and on stderr, that it is not for production', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-warn-'))
    const bridge = await startCliBridge(dir)
    await bridge.process.waitFor(/"level":40[^\n]*not for production/)
    expect(bridge.process.output()).toMatch(/^WARNING: running on the development PKI.*not for production$/m)
    bridge.process.signal('SIGTERM')
    expect(await bridge.process.exited, bridge.process.output()).toBe(0)
  })
})

describe('serve: SIGTERM', () => {
  /** inFlightAtSigterm starts a slow registration (RSA-4096 key generation), sends SIGTERM once it is pending, and returns its answer. */
  async function inFlightAtSigterm(graceMs: number): Promise<{ reply: Reply; code: number }> {
    const pki = await createTestPki()
    const bridge = await startCliBridge(pki.stateDir, [
      ...['--set', 'registration.pendingAfterMs=1', '--set', `shutdown.gracePeriodMs=${graceMs}`],
    ])
    const files = pki.device('device-001')
    const client = await connectTls(bridge.url, {
      certPem: await readFile(files.certFile, 'utf8'),
      keyPem: await readFile(files.keyFile, 'utf8'),
      caPem: await readFile(pki.file('issuing-ca.crt'), 'utf8'),
    })
    client.on('error', () => {})
    const final = new Promise<Reply>((resolve) =>
      client.on('message', (_t, payload) => {
        const reply = JSON.parse(payload.toString('utf8')) as Reply
        if (reply.status === 'pending') bridge.process.signal('SIGTERM')
        else resolve(reply)
      }),
    )
    await client.subscribeAsync('registration/device-001/reply', { qos: 1 })
    await client.publishAsync('registration/request', '{"keyAlgorithm":"RSA-4096"}', { qos: 1 })
    const reply = await final
    await client.endAsync(true)
    return { reply, code: await bridge.process.exited }
  }

  it('answers a registration in flight within the grace period, then exits 0', async () => {
    const { reply, code } = await inFlightAtSigterm(30_000)
    expect(reply.status).toBe('issued')
    expect(code).toBe(0)
  })

  it('never waits past the grace period for key generation: the request is answered ISSUER_UNAVAILABLE', async () => {
    const { reply, code } = await inFlightAtSigterm(0)
    expect(reply).toMatchObject({
      status: 'rejected',
      error: { code: 'ISSUER_UNAVAILABLE', retryable: true },
    })
    expect(code).toBe(0)
  })

  it('exits soon after the grace period even with many RSA-4096 keys being made: queued generations never start', async () => {
    const slowest = async (): Promise<number> => {
      const started = performance.now()
      await new Promise((resolve, reject) =>
        generateKeyPair('rsa', { modulusLength: 4096 }, (err) => (err ? reject(err) : resolve(undefined))),
      )
      return performance.now() - started
    }
    const oneKey = Math.max(await slowest(), await slowest())
    const pki = await createTestPki()
    const ids = Array.from({ length: 12 }, (_, i) => `rsa-${i}`)
    for (const id of ids) await pki.makeDevice(id)
    const bridge = await startCliBridge(pki.stateDir, [
      ...['--set', 'registration.pendingAfterMs=1', '--set', 'shutdown.gracePeriodMs=0'],
    ])
    const caPem = await readFile(pki.file('issuing-ca.crt'), 'utf8')
    const answers = new Map<string, Reply[]>()
    const pendings: Promise<void>[] = []
    const clients = await Promise.all(
      ids.map(async (id) => {
        const files = pki.device(id)
        const client = await connectTls(bridge.url, {
          certPem: await readFile(files.certFile, 'utf8'),
          keyPem: await readFile(files.keyFile, 'utf8'),
          caPem,
        })
        client.on('error', () => {})
        answers.set(id, [])
        pendings.push(
          new Promise<void>((resolve) =>
            client.on('message', (_t, payload) => {
              const reply = JSON.parse(payload.toString('utf8')) as Reply
              if (reply.status === 'pending') resolve()
              else answers.get(id)?.push(reply)
            }),
          ),
        )
        await client.subscribeAsync(`registration/${id}/reply`, { qos: 1 })
        return client
      }),
    )
    await Promise.all(
      clients.map((c) => c.publishAsync('registration/request', '{"keyAlgorithm":"RSA-4096"}', { qos: 1 })),
    )
    await Promise.all(pendings) // every registration is generating its key
    const signalled = performance.now()
    bridge.process.signal('SIGTERM')
    expect(await bridge.process.exited).toBe(0)
    const stopping = performance.now() - signalled
    await Promise.all(clients.map((c) => c.endAsync(true)))
    // exactly one final answer each, issued or ISSUER_UNAVAILABLE
    for (const id of ids) {
      const got = answers.get(id) ?? []
      expect(got, id).toHaveLength(1)
      if (got[0]?.status !== 'issued') expect(got[0]).toMatchObject({ error: { code: 'ISSUER_UNAVAILABLE' } })
    }
    // at most one key generation was running: 12 queued in the thread pool would hold the exit for ~6 of them
    expect(
      stopping,
      `stop took ${Math.round(stopping)} ms; one RSA-4096 key takes ${Math.round(oneKey)} ms`,
    ).toBeLessThan(2.5 * oneKey + 2000)
  })

  it('gives a gateway batch in flight the grace period too: its device is issued, then the process exits 0', async () => {
    const pki = await createTestPki()
    const files = await pki.makeDevice('gateway-001')
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const bridge = await startCliBridge(pki.stateDir, [
      ...['--set', `gateways.policyFile=${policy}`, '--set', 'shutdown.gracePeriodMs=60000'],
    ])
    const client = await connectTls(bridge.url, {
      certPem: await readFile(files.certFile, 'utf8'),
      keyPem: await readFile(files.keyFile, 'utf8'),
      caPem: await readFile(pki.file('issuing-ca.crt'), 'utf8'),
    })
    client.on('error', () => {})
    const replies: Record<string, unknown>[] = []
    const complete = new Promise<void>((resolve) =>
      client.on('message', (_t, payload) => {
        const reply = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
        replies.push(reply)
        if (reply.status === 'complete') resolve()
      }),
    )
    await client.subscribeAsync('registration/gateway-001/reply', { qos: 1 })
    const batch = {
      extension: 'gateway/1',
      requestId: 'at-sigterm',
      devices: [{ deviceId: 'gateway-001-sensor-1', keyAlgorithm: 'RSA-4096' }],
    }
    await client.publishAsync('registration/request', JSON.stringify(batch), { qos: 1 })
    bridge.process.signal('SIGTERM') // the batch is being answered: the bridge took it before its PUBACK
    await complete
    await client.endAsync(true)
    expect(replies.map((r) => [r.deviceId, r.status])).toEqual([
      ['gateway-001-sensor-1', 'issued'],
      [undefined, 'complete'],
    ])
    expect(await bridge.process.exited).toBe(0)
  })
})
