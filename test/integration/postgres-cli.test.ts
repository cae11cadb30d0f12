import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliBridge, startCliBridge } from '../support/cli-bridge.js'
import { makeClusterDevices, registerWithRetries } from '../support/cluster.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { startPostgres, type TestPostgres } from '../support/postgres.js'
import { openssl, run } from '../support/tools.js'

/**
 * The operator commands (devices, revoke) open the registry the bridge opens from the same configuration: with
 * state.postgres.url that is PostgreSQL (a real server here), never a SQLite file in the state directory.
 */
let postgres: TestPostgres
let pki: TestPki
let bridge: CliBridge | undefined
const cli = new URL('../../dist/cli.js', import.meta.url).pathname

beforeAll(async () => {
  ;[postgres, pki] = await Promise.all([startPostgres(), createTestPki()])
}, 60_000)
afterAll(async () => {
  bridge?.process.signal('SIGKILL')
  await bridge?.process.exited
  await postgres?.stop()
})

const cliRun = (args: string[]) =>
  run('node', [cli, ...args, '--state-dir', pki.stateDir, '--set', `state.postgres.url=${postgres.url}`], {
    timeoutMs: 30_000,
  })

describe('operator commands with state.postgres.url', () => {
  it('devices and revoke use PostgreSQL, create no SQLite file, and the CRL the bridge serves lists the revocation', async () => {
    bridge = await startCliBridge(pki.stateDir, ['--set', `state.postgres.url=${postgres.url}`])
    const [device] = await makeClusterDevices(pki, 'pg-cli', 1, 'csr')
    if (!device) throw new Error('no device')
    const replies = await registerWithRetries(bridge, device, 5_000)
    const issued = replies.at(-1)
    if (issued?.status !== 'issued') throw new Error(`not issued: ${JSON.stringify(replies)}`)
    const sqlite = join(pki.stateDir, 'registry.sqlite')

    const list = await cliRun(['devices', 'list', '--json'])
    expect(list.stderr).toBe('')
    expect(JSON.parse(list.stdout).map((d: { identity: string }) => d.identity)).toEqual(['pg-cli-0'])
    const show = await cliRun(['devices', 'show', 'pg-cli-0', '--json'])
    expect(JSON.parse(show.stdout).certificates[0].serialNumber).toBe(issued.serialNumber)
    const counts = JSON.parse((await cliRun(['devices', 'counts', '--json'])).stdout)
    expect(counts.active + counts.expiring).toBe(1)

    const revoked = await cliRun(['revoke', '--identity', 'pg-cli-0'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain(`revoked pg-cli-0 ${issued.serialNumber}`)
    // the CRL file is the one the running bridge serves at /crl: it lists the serial now
    const crl = await openssl(['crl', '-in', join(pki.stateDir, 'crl.pem'), '-noout', '-text'])
    expect(crl.replace(/:/g, '').toLowerCase()).toContain(issued.serialNumber.toLowerCase())
    const after = JSON.parse((await cliRun(['devices', 'counts', '--json'])).stdout)
    expect(after.revoked).toBe(1)
    expect((await cliRun(['devices', 'reset', 'pg-cli-0'])).code).toBe(0)
    expect(existsSync(sqlite)).toBe(false)
  })

  it('a read of a SQLite registry that does not exist fails clearly and creates nothing', async () => {
    const empty = join(pki.stateDir, 'nowhere')
    const result = await run('node', [cli, 'devices', 'list', '--state-dir', empty], { timeoutMs: 30_000 })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('registry.file: no registry at')
    expect(existsSync(join(empty, 'registry.sqlite'))).toBe(false)
  })
})
