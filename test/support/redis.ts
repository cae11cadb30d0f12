import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './ports.js'
import { type Running, start } from './process.js'

/** TestRedis is a real redis-server on a free loopback port, with nothing saved to disk. */
export interface TestRedis {
  readonly url: string
  readonly port: number
  /** stop kills it (SIGKILL: a crash, every key lost). */
  stop(): Promise<void>
  /** restart starts a fresh one on the same port (after stop). */
  restart(): Promise<void>
}

async function launch(port: number, dir: string): Promise<Running> {
  const redis = start('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ])
  await redis.waitFor(/Ready to accept connections/)
  return redis
}

/** startRedis starts redis-server (Debian's package; .ci/run installs it). */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'mrb-redis-'))
  let running: Running | undefined = await launch(port, dir)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      running?.signal('SIGKILL')
      await running?.exited
      running = undefined
    },
    async restart() {
      running = await launch(port, dir)
    },
  }
}

/** clientCounter counts the connections Redis has open (CLIENT LIST), through a connection of its own. */
export function clientCounter(url: string): { count(): Promise<number>; close(): void } {
  const admin = new Redis(url)
  return {
    count: async () =>
      String(await admin.client('LIST'))
        .trim()
        .split('\n').length,
    close: () => admin.disconnect(),
  }
}

/** redisContents reads every key and value in Redis (strings, lists, hashes, sets) as one text. */
export async function redisContents(url: string): Promise<string> {
  const client = new Redis(url)
  try {
    const parts: string[] = []
    for (const key of await client.keys('*')) {
      const type = await client.type(key)
      parts.push(key)
      if (type === 'string') parts.push((await client.getBuffer(key))?.toString('latin1') ?? '')
      if (type === 'list')
        parts.push(...(await client.lrangeBuffer(key, 0, -1)).map((b) => b.toString('latin1')))
      if (type === 'hash')
        parts.push(...Object.values(await client.hgetallBuffer(key)).map((b) => b.toString('latin1')))
      if (type === 'set') parts.push(...(await client.smembers(key)))
    }
    return parts.join('\n')
  } finally {
    client.disconnect()
  }
}
