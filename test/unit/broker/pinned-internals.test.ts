import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { Aedes, type Client } from 'aedes'
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { limitPacketSize } from '../../../src/broker/packet-size-limit.js'

/**
 * Two places lean on dependency internals, each guarded here so that an upgrade fails loudly, by name:
 * the packet size limit hooks mqtt-packet's `_parseLength` (src/broker/packet-size-limit.ts), and access control
 * rewrites Aedes' `client.id` in `authenticate` to scope sessions per identity (src/broker/access-control.ts).
 * The behaviour itself is tested end to end in test/integration/limits.test.ts and isolation.test.ts.
 */
const version = (name: string): string =>
  (
    JSON.parse(
      readFileSync(new URL(`../../../node_modules/${name}/package.json`, import.meta.url), 'utf8'),
    ) as {
      version: string
    }
  ).version

describe('pinned dependencies whose internals the broker relies on', () => {
  it.each([
    ['aedes', '1.2.0'],
    ['mqtt-packet', '9.0.2'],
    ['aedes-persistence', '11.0.0'],
  ])('%s is %s (re-check the hooks before changing it)', (name, pinned) => {
    expect(
      version(name),
      `${name} changed: re-check src/broker/packet-size-limit.ts and access-control.ts`,
    ).toBe(pinned)
  })
})

describe('the internals themselves', () => {
  let server: Server | undefined
  let aedes: Aedes | undefined
  afterEach(async () => {
    server?.close()
    await new Promise<void>((resolve) => (aedes ? aedes.close(() => resolve()) : resolve()))
  })

  async function broker(
    authenticate?: (client: Client) => void,
  ): Promise<{ port: number; clients: Client[] }> {
    const clients: Client[] = []
    aedes = await Aedes.createBroker({
      authenticate: (client, _u, _p, done) => {
        authenticate?.(client)
        done(null, true)
      },
    })
    const a = aedes
    server = createServer((socket) => {
      const client = a.handle(socket)
      clients.push(client)
      limitPacketSize(client, 1024)
    })
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()))
    return { port: (server.address() as { port: number }).port, clients }
  }

  it("an Aedes client's parser still has the _parseLength hook the size limit wraps", async () => {
    const { port, clients } = await broker()
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
    const parser = (clients[0] as unknown as { _parser?: { _parseLength?: unknown } })._parser
    expect(typeof parser?._parseLength, 'mqtt-packet renamed _parseLength').toBe('function')
    // and an oversized packet still closes the connection
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish('t', Buffer.alloc(4096))
    await closed
    client.end(true)
  })

  it('Aedes keys live clients by the client.id that authenticate leaves, so the rewrite scopes sessions', async () => {
    const { port } = await broker((client) => {
      ;(client as { id: string }).id = `scoped:${client.id}`
    })
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'c1', reconnectPeriod: 0 })
    const live = Object.keys((aedes as unknown as { clients: Record<string, unknown> }).clients)
    expect(live, 'Aedes no longer honours a client.id rewritten in authenticate').toEqual(['scoped:c1'])
    await client.endAsync()
  })
})
