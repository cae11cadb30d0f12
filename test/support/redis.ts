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
