import { join } from 'node:path'
import { type Running, start } from './process.js'

const repo = new URL('../../', import.meta.url).pathname

/** CliBridge is the real CLI (`node dist/cli.js serve`) running as a child process. */
export interface CliBridge {
  readonly process: Running
  readonly url: string
}

/** serveArgs is the command line of `serve` on a free loopback port, with the health server off. */
export function serveArgs(stateDir: string, args: readonly string[] = []): string[] {
  return [
    join(repo, 'dist/cli.js'),
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--state-dir',
    stateDir,
    '--set',
    'health.enabled=false',
    ...args,
  ]
}

/** startCliBridge runs `serve` (serveArgs) and waits until it listens. */
export async function startCliBridge(stateDir: string, args: readonly string[] = []): Promise<CliBridge> {
  const child = start('node', serveArgs(stateDir, args))
  await child.waitFor(/Bridge listening on mqtts:\/\/[^\s]+:\d+/)
  const port = /Bridge listening on mqtts:\/\/[^\s]+:(\d+)/.exec(child.output())?.[1]
  return { process: child, url: `mqtts://localhost:${port}` }
}
