import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistrationRejectedError } from '../../src/client/answer.js'
import { type Registration, register } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { hookSettings, type RunningHook, startTestHook } from '../support/hook.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/** The bridge authenticates to its hook with a bearer token (re-read when its file changes) or mutual TLS. */
const ANYONE = { devices: { '*': {} } }
let pki: TestPki
const hooks: RunningHook[] = []
const bridges: TestBridge[] = []

beforeAll(async () => {
  pki = await createTestPki()
})

afterAll(async () => {
  for (const b of bridges) await b.stop()
  for (const h of hooks) await h.close()
})

async function started(sets: string[]): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

async function registerAs(b: TestBridge, id: string): Promise<Registration> {
  await pki.makeDevice(id)
  return register({ url: b.url, ...tlsFor(b, pki.device(id)) })
}

async function codeOf(promise: Promise<Registration>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RegistrationRejectedError)
  return (err as RegistrationRejectedError).code
}

describe('authentication to the hook', () => {
  it('bearer token: sent, re-read when its file changes, an empty file refused (the token in force stays)', async () => {
    let expected = 's3cret-one'
    const hook = await startTestHook(pki, { token: () => expected, inventory: ANYONE })
    hooks.push(hook)
    const tokenFile = join(pki.stateDir, 'hook-token')
    await writeFile(tokenFile, 's3cret-one\n')
    const bridge = await started(hookSettings(hook, pki, [`hook.bearerTokenFile=${tokenFile}`]))
    expect((await registerAs(bridge, 'token-1')).serialNumber).toBeDefined()

    expected = 's3cret-two'
    const reloaded = bridge.waitForLog('hook bearer token reloaded')
    await writeFile(tokenFile, 's3cret-two') // no newline: a Secret written with --from-literal
    await reloaded
    expect((await registerAs(bridge, 'token-2')).serialNumber).toBeDefined()

    const refused = bridge.waitForLog('hook bearer token refused; keeping the old one')
    await writeFile(tokenFile, '')
    await refused
    expect((await registerAs(bridge, 'token-3')).serialNumber).toBeDefined()

    // a token the hook does not take: 401, not retried, fail closed
    expected = 's3cret-three'
    const before = hook.calls.length
    expect(await codeOf(registerAs(bridge, 'token-4'))).toBe('HOOK_UNAVAILABLE')
    expect(hook.calls.length).toBe(before) // refused before the body was read
    expect(bridge.logs.some((l) => l.includes('HTTP 401'))).toBe(true)
    expect(bridge.logs.join('\n')).not.toContain('s3cret')
  })

  it('mutual TLS: the bridge presents hook.clientCertFile, re-read when rotated; without it the hook refuses the handshake', async () => {
    const clientCa = await readFile(pki.file(DEV_PKI_FILES.factoryCaCert), 'utf8')
    const lines: Record<string, unknown>[] = []
    const hook = await startTestHook(pki, { clientCa, inventory: ANYONE, log: (l) => lines.push(l) })
    hooks.push(hook)
    // clientAuth certificates the hook's CA signed; the bridge reads them from files it watches
    const [one, two] = [await pki.makeDevice('bridge-client-1'), await pki.makeDevice('bridge-client-2')]
    const certFile = join(pki.stateDir, 'hook-client.crt')
    const keyFile = join(pki.stateDir, 'hook-client.key')
    await copyFile(one.certFile, certFile)
    await copyFile(one.keyFile, keyFile)
    const withCert = await started(
      hookSettings(hook, pki, [`hook.clientCertFile=${certFile}`, `hook.clientKeyFile=${keyFile}`]),
    )
    expect((await registerAs(withCert, 'mtls-1')).serialNumber).toBeDefined()

    // rotated: the next call presents the new certificate (a key that does not match yet is refused meanwhile)
    const reloaded = withCert.waitForLog('hook TLS material reloaded')
    await copyFile(two.keyFile, keyFile)
    await copyFile(two.certFile, certFile)
    await reloaded
    expect((await registerAs(withCert, 'mtls-rotated')).serialNumber).toBeDefined()
    expect(lines.map((l) => [l.identity, l.client])).toEqual([
      ['mtls-1', 'bridge-client-1'],
      ['mtls-rotated', 'bridge-client-2'],
    ])

    const without = await started(hookSettings(hook, pki))
    expect(await codeOf(registerAs(without, 'mtls-2'))).toBe('HOOK_UNAVAILABLE')
    expect(hook.calls.map((c) => c.identity)).toEqual(['mtls-1', 'mtls-rotated'])
    expect(without.logs.join('\n')).not.toContain('PRIVATE KEY')
  })
})
