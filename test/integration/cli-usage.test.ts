import { mkdtemp } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run } from '../support/tools.js'

/**
 * Every subcommand refuses a flag it cannot use — a bad number, a value outside its list, an invalid identity,
 * serial or requestId — with exit status 2 and a message on stderr naming it, before it reads a file, opens a
 * store or sends anything: register's --url points at a listener that counts connections, and none arrives.
 */
const cli = new URL('../../dist/cli.js', import.meta.url).pathname
let dir: string
let listener: Server
let connections = 0
let url: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mrb-cli-usage-'))
  listener = createServer((socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  url = `mqtts://127.0.0.1:${(listener.address() as { port: number }).port}`
})
afterAll(() => new Promise<void>((resolve) => listener.close(() => resolve())))

type Row = readonly [command: string, args: () => string[], names: RegExp]
const register =
  (...args: string[]) =>
  () => ['register', '--url', url, '--state-dir', dir, ...args]
const gateway = (...args: string[]) => register('--gateway', 'gateway-001', ...args)
const state =
  (...args: string[]) =>
  () => [...args, '--state-dir', dir]

const ROWS: Row[] = [
  ['serve --port abc', state('serve', '--port', 'abc'), /listen\.port/],
  ['serve --port 70000', state('serve', '--port', '70000'), /listen\.port/],
  ['serve --workers abc', state('serve', '--workers', 'abc'), /state\.workers/],
  ['serve --workers=-1', state('serve', '--workers=-1'), /state\.workers/],
  ['serve --log-level loud', state('serve', '--log-level', 'loud'), /log\.level/],
  ['init --force=yes', state('init', '--force=yes'), /--force/],
  ['register --timeout 0', register('--device', 'device-001', '--timeout', '0'), /--timeout/],
  ['register --timeout abc', register('--device', 'device-001', '--timeout', 'abc'), /--timeout/],
  [
    'register --key-algorithm DSA',
    register('--device', 'device-001', '--key-algorithm', 'DSA'),
    /--key-algorithm/,
  ],
  ['register --device ../x', register('--device', '../x'), /--device/],
  [
    'register --url localhost:8883',
    () => ['register', '--url', 'localhost:8883', '--device', 'device-001'],
    /--url/,
  ],
  ['register --verify http://x', register('--device', 'device-001', '--verify', 'http://x'), /--verify/],
  [
    'register --gateway --url ftp://x',
    () => ['register', '--gateway', 'gateway-001', '--device', 's-1', '--url', 'ftp://x'],
    /--url/,
  ],
  ['register --device twice', register('--device', 'device-001', '--device', 'device-002'), /--device/],
  [
    'register --request-id with a space',
    register('--device', 'device-001', '--request-id', 'a b'),
    /--request-id/,
  ],
  ['register --gateway --batch-size 0', gateway('--device', 's-1', '--batch-size', '0'), /--batch-size/],
  ['register --gateway --batch-size abc', gateway('--device', 's-1', '--batch-size', 'abc'), /--batch-size/],
  ['register --gateway --batch-size 1.5', gateway('--device', 's-1', '--batch-size', '1.5'), /--batch-size/],
  ['register --gateway --timeout abc', gateway('--device', 's-1', '--timeout', 'abc'), /--timeout/],
  [
    'register --gateway --key-algorithm DSA',
    gateway('--device', 's-1', '--key-algorithm', 'DSA'),
    /--key-algorithm/,
  ],
  ['register --gateway one bad --device', gateway('--device', 's-1', '--device', 's 2'), /--device/],
  ['register --gateway --device a/b', gateway('--device', 'a/b'), /--device/],
  ['register --gateway bad/id', register('--gateway', 'bad/id', '--device', 's-1'), /--gateway/],
  ['register --gateway no devices', gateway(), /--device/],
  [
    'register --gateway --request-id too long for its batches',
    gateway('--device', 's-1', '--request-id', 'r'.repeat(128)),
    /--request-id/,
  ],
  ['devices list --expiring soon', state('devices', 'list', '--expiring', 'soon'), /--expiring/],
  ['devices list --owner a/b', state('devices', 'list', '--owner', 'a/b'), /--owner/],
  ['devices show a/b', state('devices', 'show', 'a/b'), /IDENTITY/],
  ['devices reset ../x', state('devices', 'reset', '../x'), /IDENTITY/],
  ['devices frobnicate', state('devices', 'frobnicate'), /devices list/],
  ['revoke --serial xyz', state('revoke', '--serial', 'xyz'), /--serial/],
  ['revoke --serial 5b::a9', state('revoke', '--serial', '5b::a9'), /--serial/],
  ['revoke --reason nope', state('revoke', '--serial', '5b', '--reason', 'nope'), /--reason/],
  ['revoke --identity a/b', state('revoke', '--identity', 'a/b'), /--identity/],
  ['revoke with neither', state('revoke'), /--identity and --serial/],
]

describe('CLI usage errors: exit 2, a message on stderr, nothing read, opened or sent', () => {
  it.each(ROWS)('%s', async (_name, args, names) => {
    const before = connections
    const result = await run(process.execPath, [cli, ...args()])
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toMatch(names)
    const command = args()[0] as string
    // every command but serve (whose flags are settings: the message names the setting) prints its usage
    if (command !== 'serve') expect(result.stderr).toContain(`Usage: registration-bridge ${command}`)
    expect(result.stdout).toBe('')
    expect(connections).toBe(before)
  })
})
