import { copyFile, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { createTestPki } from '../support/pki.js'
import { freePort } from '../support/ports.js'
import { type Running, start } from '../support/process.js'
import { run } from '../support/tools.js'

/**
 * Runs the README's walkthrough as written, block by block, in a fresh directory: only the ports are changed
 * (the bridge listens on a free port, not 8883), and `npx registration-bridge` runs the built CLI.
 */
const repo = new URL('../../', import.meta.url).pathname
let bridge: TestBridge
let cwd: string
let productionPort: number
const background: Running[] = []

/** walkthroughBlocks returns the walkthrough's shell blocks, each marked if the prose has stopped the production broker before it. */
function walkthroughBlocks(readme: string): { script: string; afterStop: boolean }[] {
  const section = readme.split('## Walkthrough')[1]?.split('\n## ')[0] ?? ''
  const stopAt = section.indexOf('Stop the production broker')
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => ({
    script: m[1] ?? '',
    afterStop: stopAt >= 0 && (m.index ?? 0) > stopAt,
  }))
}

function localise(script: string): string {
  return script
    .replaceAll('-p 8883', `-p ${bridge.port}`)
    .replaceAll('8884', String(productionPort))
    .replaceAll(
      'npx registration-bridge register',
      `node ${join(repo, 'dist/cli.js')} register --url ${bridge.url}`,
    )
}

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'mrb-readme-'))
  bridge = await startTestBridge([], await createTestPki(join(cwd, '.registration-bridge')))
  productionPort = await freePort()
  await mkdir(join(cwd, 'docs/examples'), { recursive: true })
  const conf = await readFile(join(repo, 'docs/examples/production-mosquitto.conf'), 'utf8')
  await writeFile(join(cwd, 'docs/examples/production-mosquitto.conf'), localise(conf))
  await copyFile(join(repo, 'README.md'), join(cwd, 'README.md'))
})

afterAll(async () => {
  for (const p of background) p.kill()
  await Promise.all(background.map((p) => p.exited.catch(() => 0)))
  await bridge?.stop()
})

it('the README walkthrough works as written', async () => {
  const [first, ...marked] = walkthroughBlocks(await readFile(join(repo, 'README.md'), 'utf8'))
  const prelude = first?.script ?? ''
  expect(prelude).toContain('FACTORY=')
  const bash = (script: string): string[] => [
    '-euo',
    'pipefail',
    '-c',
    `${localise(prelude)}\n${localise(script)}`,
  ]
  const outcomes: string[] = []
  let subscriber: Running | undefined
  let refusal = ''
  let production: Running | undefined
  for (const { script: block, afterStop } of marked) {
    if (afterStop && production) {
      // the reader has pressed Ctrl-C on the production broker: what follows runs without it
      production.kill()
      await production.exited
      production = undefined
    }
    if (block.includes('mosquitto_sub')) {
      const subscribed = bridge.waitForLog('subscribed')
      subscriber = start('bash', bash(block), { cwd })
      background.push(subscriber)
      await subscribed
      outcomes.push('subscribed')
      continue
    }
    if (block.startsWith('mosquitto -c')) {
      const broker = start('bash', bash(block), { cwd })
      production = broker
      background.push(broker)
      await broker.waitFor(/mosquitto version \S+ running/)
      outcomes.push('production broker running')
      continue
    }
    const result = await run('bash', bash(block), { cwd, timeoutMs: 30_000 })
    if (block.includes('-m nope')) {
      expect(result.code, result.stderr).not.toBe(0) // the factory certificate is refused by production
      refusal = `${result.stdout}${result.stderr}`
    } else {
      expect(result.code, `${block}\n${result.stdout}\n${result.stderr}`).toBe(0)
    }
    if (block.includes('registration/request')) expect(await subscriber?.exited).toBe(0)
    outcomes.push(result.stdout.trim() || `exit ${result.code}`)
  }
  expect(outcomes.join('\n')).toContain('device.crt: OK')
  expect(outcomes.join('\n')).toMatch(/Connected to mqtts:\/\/localhost:\d+ with the new credentials/)
  expect(refusal).toMatch(/Error: (The connection was lost\.|Protocol error)/)
  // the reply held a private key: it is gone, and the key file is readable by its owner only
  await expect(stat(join(cwd, 'credentials/device-001/reply.json'))).rejects.toThrow(/ENOENT/)
  expect((await stat(join(cwd, 'credentials/device-001/device.key'))).mode & 0o777).toBe(0o600)
  expect(await readFile(join(cwd, 'credentials/device-001/device.key'), 'utf8')).toContain('PRIVATE KEY')
})
