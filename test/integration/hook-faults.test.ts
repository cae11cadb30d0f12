import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistrationRejectedError } from '../../src/client/answer.js'
import { type Registration, register } from '../../src/client/register.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import {
  type HookCallBody,
  type HookResponse,
  held,
  hookSettings,
  type RunningHook,
  startTestHook,
} from '../support/hook.js'
import { scrapeMetrics } from '../support/metrics.js'
import { createTestPki, type TestPki } from '../support/pki.js'

/**
 * A hook that fails: each kind of failure, retried within bounds, fails closed (HOOK_UNAVAILABLE, retryable) by
 * default and open only when configured; a slow hook for some identities never holds up the others.
 */
type Behaviour = (call: HookCallBody, attempt: number) => HookResponse | Promise<HookResponse>
const ALLOW: HookResponse = { body: { allow: true } }

let pki: TestPki
let hook: RunningHook
let bridge: TestBridge
const bridges: TestBridge[] = []
/** behaviours by identity; an identity without one is allowed */
const behaviours = new Map<string, Behaviour>()
/** answers the test never gave (a call that timed out): given at the end so the hook can close */
const unanswered: (() => void)[] = []

const attempts = (identity: string): HookCallBody[] => hook.calls.filter((c) => c.identity === identity)

async function started(sets: string[]): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

async function device(id: string): Promise<Parameters<typeof register>[0]> {
  await pki.makeDevice(id)
  return { url: bridge.url, ...tlsFor(bridge, pki.device(id)), timeoutMs: 20_000 }
}

async function rejection(promise: Promise<Registration>): Promise<RegistrationRejectedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RegistrationRejectedError)
  return err as RegistrationRejectedError
}

/** freePort is a loopback port nobody listens on (bound, then closed). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

beforeAll(async () => {
  pki = await createTestPki()
  hook = await startTestHook(pki, {
    decide: (call) => {
      const behaviour = behaviours.get(call.identity)
      return behaviour ? behaviour(call, attempts(call.identity).length) : ALLOW
    },
  })
  bridge = await started(hookSettings(hook, pki, ['hook.timeoutMs=1000']))
})

afterAll(async () => {
  for (const answer of unanswered) answer()
  for (const b of bridges) await b.stop()
  await hook?.close()
})

describe('a hook that fails, fail-closed (the default)', () => {
  it('timeout: each attempt within hook.timeoutMs, 1 + hook.retries attempts of one call, then HOOK_UNAVAILABLE', async () => {
    behaviours.set('slow-1', () => {
      const h = held()
      unanswered.push(() => h.answer(ALLOW))
      return h.promise
    })
    const err = await rejection(register(await device('slow-1')))
    expect([err.code, err.retryable, err.retryAfterSeconds]).toEqual(['HOOK_UNAVAILABLE', true, 30])
    const calls = attempts('slow-1')
    expect(calls).toHaveLength(3)
    expect(new Set(calls.map((c) => c.callId)).size).toBe(1) // one call, retried
    const scrape = await scrapeMetrics(bridge.bridge.healthPort as number)
    expect(scrape.sample('mqtt_registration_bridge_hook_calls_total', { result: 'timeout' })).toBe(1)
    expect(
      bridge.logs.some((l) => l.includes('HOOK_UNAVAILABLE') && l.includes('no answer within 1000 ms')),
    ).toBe(true)
  })

  it('HTTP 503 twice, then an answer: the retry is issued', async () => {
    behaviours.set('flaky-1', (_call, n) => (n < 3 ? { status: 503, body: { error: 'busy' } } : ALLOW))
    const registration = await register(await device('flaky-1'))
    expect(registration.serialNumber).toMatch(/^[0-9a-f]+$/)
    expect(attempts('flaky-1')).toHaveLength(3)
  })

  it.each([
    ['not JSON', 'bad-json-1', { body: '{"allow": tru' }],
    ['a field the contract does not define', 'unknown-1', { body: { allow: true, admin: true } }],
    [
      'a longer validity than offered',
      'wider-1',
      { body: { allow: true, certificate: { validityHours: 721 } } },
    ],
    [
      'a DNS name not offered',
      'wider-2',
      { body: { allow: true, certificate: { dnsNames: ['evil.example'] } } },
    ],
    ['an endpoint that is not a URL', 'bad-url-1', { body: { allow: true, endpoint: { url: 'not a url' } } }],
    ['allow as a string', 'bad-allow-1', { body: { allow: 'yes' } }],
  ] as const)(
    'a malformed answer (%s) is retried, then HOOK_UNAVAILABLE: never partly applied',
    async (_what, id, response) => {
      behaviours.set(id, () => response)
      const err = await rejection(register(await device(id)))
      expect(err.code).toBe('HOOK_UNAVAILABLE')
      expect(attempts(id)).toHaveLength(3)
    },
  )

  it('HTTP 403 is not retried: HOOK_UNAVAILABLE after one attempt', async () => {
    behaviours.set('forbidden-1', () => ({ status: 403, body: { error: 'no' } }))
    const err = await rejection(register(await device('forbidden-1')))
    expect(err.code).toBe('HOOK_UNAVAILABLE')
    expect(attempts('forbidden-1')).toHaveLength(1)
  })

  it('readiness: 5 failed calls in a row make /readyz 503; an answered call makes it ready again', async () => {
    const probe = async () => {
      const res = await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/readyz`)
      return { status: res.status, body: await res.text() }
    }
    for (let i = 0; i < 5; i++) {
      behaviours.set(`down-${i}`, () => ({ status: 500, body: {} }))
      await rejection(register(await device(`down-${i}`)))
    }
    expect(await probe()).toEqual({
      status: 503,
      body: 'not ready\nthe registration hook failed 5 calls in a row\n',
    })
    await register(await device('up-1'))
    expect(await probe()).toEqual({ status: 200, body: 'ok\n' })
  })

  it('connection refused: HOOK_UNAVAILABLE after the retries; the bridge keeps serving', async () => {
    const closed = await started([`hook.url=http://127.0.0.1:${await freePort()}/hook`])
    await pki.makeDevice('refused-1')
    const err = await rejection(register({ url: closed.url, ...tlsFor(closed, pki.device('refused-1')) }))
    expect(err.code).toBe('HOOK_UNAVAILABLE')
    expect(closed.logs.some((l) => l.includes('ECONNREFUSED'))).toBe(true)
  })

  it('fail-open (hook.failOpen=true): an unreachable hook allows, with a warning', async () => {
    const open = await started([`hook.url=http://127.0.0.1:${await freePort()}/hook`, 'hook.failOpen=true'])
    await pki.makeDevice('open-1')
    const registration = await register({ url: open.url, ...tlsFor(open, pki.device('open-1')) })
    expect(registration.serialNumber).toBeDefined()
    expect(open.logs.some((l) => l.includes('registration hook unavailable: allowed (hook.failOpen)'))).toBe(
      true,
    )
  })
})

describe('a slow hook under load', () => {
  it('hook.maxConcurrent bounds the calls on the wire: the others wait for a connection', async () => {
    const bounded = await started(hookSettings(hook, pki, ['hook.maxConcurrent=2', 'hook.timeoutMs=60000']))
    const ids = ['queue-1', 'queue-2', 'queue-3', 'queue-4']
    const answers: (() => void)[] = []
    const arrived: (() => void)[] = []
    let onHook = 0
    let most = 0
    for (const id of ids) {
      behaviours.set(id, async () => {
        most = Math.max(most, ++onHook)
        const h = held()
        answers.push(() => h.answer(ALLOW))
        for (const a of arrived.splice(0)) a()
        const response = await h.promise
        onHook--
        return response
      })
      await pki.makeDevice(id)
    }
    const heldCalls = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (answers.length >= n ? resolve() : void arrived.push(check))
        check()
      })
    const asking = (): number => bounded.logs.filter((l) => l.includes('asking the registration hook')).length
    const options = (id: string) => ({
      url: bounded.url,
      ...tlsFor(bounded, pki.device(id)),
      timeoutMs: 60_000,
    })
    const connectionsBefore = hook.connections
    const first = ids.slice(0, 2).map((id) => register(options(id)))
    await heldCalls(2)
    const queued = ids.slice(2).map((id) => register(options(id)))
    // both queued registrations have handed their call to the client (a socket, or the wait for one)
    while (asking() < 4) await bounded.waitForLog('asking the registration hook')
    for (const answer of answers.splice(0)) answer()
    await Promise.all(first)
    await heldCalls(2)
    for (const answer of answers.splice(0)) answer()
    await Promise.all(queued)
    expect(most).toBe(2)
    // the queued calls waited for the two kept-alive connections instead of opening their own
    expect(hook.connections - connectionsBefore).toBe(2)
  })

  it('slow for some identities only: the others are answered meanwhile; the slow ones once it answers', async () => {
    const slow = await started(hookSettings(hook, pki, ['hook.timeoutMs=60000']))
    const answers: (() => void)[] = []
    const waiting: (() => void)[] = []
    const slowIds = ['lazy-1', 'lazy-2', 'lazy-3']
    for (const id of slowIds) {
      behaviours.set(id, () => {
        const h = held()
        answers.push(() => h.answer(ALLOW))
        for (const w of waiting.splice(0)) w()
        return h.promise
      })
      await pki.makeDevice(id)
    }
    const options = (id: string) => ({ url: slow.url, ...tlsFor(slow, pki.device(id)), timeoutMs: 60_000 })
    const lazy = slowIds.map((id) => register(options(id)))
    // every slow call is held at the hook before the others start
    await new Promise<void>((resolve) => {
      const check = () => (answers.length >= slowIds.length ? resolve() : void waiting.push(check))
      check()
    })
    const fastIds = Array.from({ length: 20 }, (_, i) => `busy-${i}`)
    for (const id of fastIds) await pki.makeDevice(id)
    const fast = await Promise.all(fastIds.map((id) => register(options(id))))
    expect(fast).toHaveLength(20)
    for (const answer of answers) answer()
    const late = await Promise.all(lazy)
    expect(late.map((r) => r.serialNumber)).toHaveLength(3)
  })
})
