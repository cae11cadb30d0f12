import { readFile } from 'node:fs/promises'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { RegistrationError } from '../../../src/protocol/errors.js'
import type { Step } from '../../../src/registration/pipeline/registration.js'
import { STEPS } from '../../../src/registration/pipeline/steps.js'
import type { RegistrationService } from '../../../src/registration/service.js'
import { MemoryState } from '../../../src/state/memory.js'
import { opensslCsr } from '../../support/csr.js'
import {
  answer,
  errorCode,
  FakeHook,
  FakeIssuer,
  issuedSerial,
  payload,
  pipelineHarness,
  pipelineOptions,
} from '../../support/pipeline.js'

/**
 * The one pipeline, with a fake issuer (held, failed, counted) and the real SQLite registry: every step in its
 * place. Each test names the step it pins; removing or moving that step fails it.
 */
const { store, start, processes } = pipelineHarness()

/** crashAfter is STEPS cut after its `n` first steps, where the process dies (nothing after runs). */
function crashAfter(n: number): Record<string, Step> {
  const steps: Record<string, Step> = Object.fromEntries(Object.entries(STEPS).slice(0, n))
  steps.crash = () => {
    throw new Error('killed')
  }
  return steps
}

const NAMES = Object.keys(STEPS)

describe('the registration pipeline', () => {
  it('is one list of named steps, in the order docs/architecture.md draws', async () => {
    const docs = await readFile(new URL('../../../docs/architecture.md', import.meta.url), 'utf8')
    const table = docs.slice(docs.indexOf('### One pipeline'), docs.indexOf('### Only the holder commits'))
    const drawn = [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1])
    expect(NAMES).toEqual(drawn)
    expect(NAMES).toHaveLength(15)
  })

  describe.each(['server-key', 'csr'] as const)('a crash between two steps, then a retry (%s)', (mode) => {
    it.each(NAMES.slice(0, -1).map((name, i) => [name, i + 1] as const))(
      'killed after %s: the retry gets exactly one answer, the registry one active certificate',
      async (_name, n) => {
        const s = await store()
        const issuer = new FakeIssuer()
        // the hook assigns a production endpoint: it is recorded with the certificate, so a replay carries it
        const hook = new FakeHook(() => ({ allow: true, endpoint: 'mqtts://production-7.example:8883' }))
        const body =
          mode === 'csr' ? payload('r1', { csr: (await opensslCsr('/CN=dev-1')).csr }) : payload('r1')
        const first = await answer(start(s, issuer, { steps: crashAfter(n), hook }), 'dev-1', body)
        expect(first?.status).toBe('rejected') // a dead process answers nothing; here: not `issued`
        const committed = (await s.registry.device('dev-1'))?.certificates ?? []
        expect(committed.length).toBe(n > NAMES.indexOf('commit') ? 1 : 0)
        const asked = hook.calls.length
        const retry = await answer(start(s, issuer, { hook }), 'dev-1', body)
        expect(retry?.status === 'issued' && retry.endpoint?.url).toBe('mqtts://production-7.example:8883')
        // once per issuance: a replay of the recorded answer (CSR mode) asks no more
        const replayed = committed[0] !== undefined && mode === 'csr'
        expect(hook.calls.length).toBe(asked + (replayed ? 0 : 1))
        const certificates = (await s.registry.device('dev-1'))?.certificates ?? []
        const active = certificates.filter((c) => c.state === 'active')
        expect(active.map((c) => c.serialNumber)).toEqual([issuedSerial(retry)])
        if (committed[0] && mode === 'csr') {
          // the recorded answer is replayed: the same certificate, issued once
          expect(issuedSerial(retry)).toBe(committed[0].serialNumber)
          expect(certificates).toHaveLength(1)
        } else if (committed[0]) {
          // its key died with the process: a new certificate that names the one it replaces
          expect(certificates[0]?.supersedes).toBe(committed[0].serialNumber)
        } else expect(certificates).toHaveLength(1)
      },
    )
  })

  it('open: a closing bridge refuses new requests (ISSUER_UNAVAILABLE)', async () => {
    const service = start(await store(), new FakeIssuer())
    await service.close()
    expect(errorCode(await answer(service, 'dev-1', payload('r1')))).toBe('ISSUER_UNAVAILABLE')
  })

  it('denyList before replay: a denied identity gets no earlier answer again', async () => {
    const denied = new Set<string>()
    const options = pipelineOptions()
    const lifecycle = {
      ...(options.lifecycle as NonNullable<typeof options.lifecycle>),
      denied: ({ identity }: { identity: string }) => (denied.has(identity) ? 'denied' : undefined),
    }
    const s = await store()
    const service = start(s, new FakeIssuer(), { options: { lifecycle } })
    expect(issuedSerial(await answer(service, 'dev-1', payload('r1')))).toBeDefined()
    denied.add('dev-1')
    expect(errorCode(await answer(service, 'dev-1', payload('r1')))).toBe('NOT_AUTHORIZED')
    denied.add('dev-2') // and a denied identity's first request gets nothing issued
    expect(errorCode(await answer(service, 'dev-2', payload('r1')))).toBe('NOT_AUTHORIZED')
    expect(await s.registry.device('dev-2')).toBeUndefined()
  })

  it('renewal before replay: a revoked operational certificate gets nothing, not even a replay', async () => {
    const s = await store()
    const service = start(s, new FakeIssuer())
    const first = await answer(service, 'dev-1', payload('r1'))
    const serialNumber = issuedSerial(first) as string
    const credential = {
      kind: 'operational' as const,
      serialNumber,
      sha256Fingerprint: '',
      spki: Buffer.alloc(1),
    }
    const renewed = (await service.handle('dev-1', payload('renew-1'), credential))?.reply
    expect(renewed?.status).toBe('issued')
    const record = await s.registry.certificate(issuedSerial(renewed) as string)
    expect([record?.event, record?.supersedes]).toEqual(['renewed', serialNumber])
    await s.registry.revoke(issuedSerial(renewed) as string, { at: new Date(), reason: 'keyCompromise' })
    const revoked = { ...credential, serialNumber: issuedSerial(renewed) as string }
    const again = await service.handle('dev-1', payload('renew-2'), revoked)
    expect(errorCode(again?.reply)).toBe('NOT_AUTHORIZED')
  })

  it('lease: the same request twice at once is answered once; another request of the identity waits its turn', async () => {
    const issuer = new FakeIssuer()
    const service = start(await store(), issuer)
    issuer.hold()
    const a = service.handle('dev-1', payload('r1'))
    const b = service.handle('dev-1', payload('r1'))
    const c = service.handle('dev-1', payload('r2'))
    await issuer.waiting(1)
    issuer.release()
    const [ra, rb, rc] = await Promise.all([a, b, c])
    expect(ra?.reply.status).toBe('issued')
    expect(rb).toBeUndefined() // the holder answers
    expect(errorCode(rc?.reply)).toBe('REGISTRATION_IN_PROGRESS')
    expect(issuer.issued).toBe(1)
  })

  it('replay before rateLimit: a retry of an answered request spends no token', async () => {
    const issuer = new FakeIssuer()
    const service = start(await store(), issuer, { options: { rateLimit: { burst: 1, perMinute: 1 } } })
    const first = issuedSerial(await answer(service, 'dev-1', payload('r1')))
    expect(issuedSerial(await answer(service, 'dev-1', payload('r1')))).toBe(first)
    expect(issuer.issued).toBe(1)
  })

  it('authorize before replay: an earlier answer the policy now refuses is not handed out', async () => {
    const options = pipelineOptions()
    const allowed = ['ECDSA-P256', 'Ed25519'] as ('ECDSA-P256' | 'Ed25519')[]
    const service = start(await store(), new FakeIssuer(), {
      options: { policy: { ...options.policy, allowedKeyAlgorithms: allowed } },
    })
    const body = payload('r1', { keyAlgorithm: 'Ed25519' })
    expect((await answer(service, 'dev-1', body))?.status).toBe('issued')
    allowed.pop()
    expect(errorCode(await answer(service, 'dev-1', body))).toBe('KEY_NOT_ALLOWED')
  })

  it('rateLimit before lifecycle: a new request over the limit is RATE_LIMITED, whatever the policy says', async () => {
    const service = start(await store(), new FakeIssuer(), {
      options: { rateLimit: { burst: 1, perMinute: 1 } },
    })
    expect((await answer(service, 'dev-1', payload('r1')))?.status).toBe('issued')
    expect(errorCode(await answer(service, 'dev-1', payload('r2')))).toBe('RATE_LIMITED')
  })

  it('lifecycle: under `refuse`, a second registration of an identity with a valid certificate is refused', async () => {
    const service = start(await store(), new FakeIssuer())
    expect((await answer(service, 'dev-1', payload('r1')))?.status).toBe('issued')
    expect(errorCode(await answer(service, 'dev-1', payload('r2')))).toBe('NOT_AUTHORIZED')
  })

  it('hook after replay: a retry answered from the reply cache or the registry never asks the hook again', async () => {
    const s = await store()
    const hook = new FakeHook(() => ({ allow: true, endpoint: 'mqtts://eu-2.example:8883' }))
    const body = payload('r1', { csr: (await opensslCsr('/CN=dev-1')).csr })
    const first = await answer(start(s, new FakeIssuer(), { hook }), 'dev-1', body)
    const cached = await answer(processes[0] as RegistrationService, 'dev-1', body)
    const restarted = await answer(start(s, new FakeIssuer(), { hook }), 'dev-1', body) // from the registry
    expect(hook.calls).toHaveLength(1)
    for (const reply of [first, cached, restarted]) {
      expect(issuedSerial(reply)).toBe(issuedSerial(first))
      expect(reply?.status === 'issued' && reply.endpoint?.url).toBe('mqtts://eu-2.example:8883')
    }
  })

  it('hook after rateLimit: a request over the limit never reaches the hook', async () => {
    const hook = new FakeHook()
    const service = start(await store(), new FakeIssuer(), {
      hook,
      options: { rateLimit: { burst: 1, perMinute: 1 } },
    })
    expect((await answer(service, 'dev-1', payload('r1')))?.status).toBe('issued')
    expect(errorCode(await answer(service, 'dev-2', payload('r1')))).toBe(undefined)
    expect(errorCode(await answer(service, 'dev-1', payload('r2')))).toBe('RATE_LIMITED')
    expect(hook.calls.map((c) => c.identity)).toEqual(['dev-1', 'dev-2'])
  })

  it('issue: a failed issuance records nothing; the retry is issued', async () => {
    const s = await store()
    const issuer = new FakeIssuer()
    const service = start(s, issuer)
    issuer.failNext = new Error('the CA is on fire')
    expect(errorCode(await answer(service, 'dev-1', payload('r1')))).toBe('INTERNAL_ERROR')
    expect(await s.registry.device('dev-1')).toBeUndefined()
    expect((await answer(service, 'dev-1', payload('r1')))?.status).toBe('issued')
  })

  it('vet: the gateway path runs the gateway policy, and a device the gateway may not hold gets nothing', async () => {
    const service = start(await store(), new FakeIssuer())
    const context = (allowed: boolean) => ({
      registeredBy: 'gw-1',
      requestId: 'batch-1',
      log: pino({ level: 'silent' }),
      vet: async () => {
        if (!allowed) throw new RegistrationError('NOT_AUTHORIZED', 'not this one')
        return { takeOver: false }
      },
      spend: async () => {},
    })
    await expect(
      service.issueFor('sensor-1', { keyAlgorithm: 'ECDSA-P256' }, context(false)),
    ).rejects.toThrow('not this one')
    const issued = await service.issueFor('sensor-1', { keyAlgorithm: 'ECDSA-P256' }, context(true))
    expect(issued.status).toBe('issued')
  })
})

describe('limits live in the shared state: they hold across processes', () => {
  it('the renewal rate limit: a renewal on another process spends the same bucket', async () => {
    const s = await store()
    const state = new MemoryState()
    const options = pipelineOptions()
    const lifecycle = {
      ...(options.lifecycle as NonNullable<typeof options.lifecycle>),
      renewalRateLimit: { burst: 1, perMinute: 1 },
    }
    const [a, b] = [
      start(s, new FakeIssuer(), { state, options: { lifecycle } }),
      start(s, new FakeIssuer(), { state, options: { lifecycle } }),
    ]
    const first = issuedSerial(await answer(a, 'dev-1', payload('r1'))) as string
    const credential = (serialNumber: string) => ({
      kind: 'operational' as const,
      serialNumber,
      sha256Fingerprint: '',
      spki: Buffer.alloc(1),
    })
    const renewed = await a.handle('dev-1', payload('renew-1'), credential(first))
    const second = issuedSerial(renewed?.reply) as string
    const again = await b.handle('dev-1', payload('renew-2'), credential(second))
    expect(again?.reply).toMatchObject({
      status: 'rejected',
      error: { code: 'RATE_LIMITED', message: 'too many renewals' },
    })
  })
})

describe('exactly once across processes: the commit names the record it read', () => {
  it.each(['server-key', 'csr'] as const)(
    'two processes that both believe they hold the lease (split brain): one commit; the other answers nothing different (%s)',
    async (mode) => {
      const s = await store()
      const slow = new FakeIssuer()
      const fast = new FakeIssuer()
      const body =
        mode === 'csr' ? payload('r1', { csr: (await opensslCsr('/CN=dev-1')).csr }) : payload('r1')
      // each process with a state of its own: both take the lease (as after a Redis failover that lost it)
      const a = start(s, slow, { state: new MemoryState() })
      const b = start(s, fast, { state: new MemoryState() })
      slow.hold()
      const first = a.handle('dev-1', body)
      await slow.waiting(1)
      const second = await answer(b, 'dev-1', body)
      slow.release()
      const late = await first
      const certificates = (await s.registry.device('dev-1'))?.certificates ?? []
      expect(certificates.map((c) => c.serialNumber)).toEqual([issuedSerial(second)])
      // CSR mode: the committed certificate is the answer (the same); server-key: its committer answers (silence)
      if (mode === 'csr') expect(issuedSerial(late?.reply)).toBe(issuedSerial(second))
      else expect(late).toBeUndefined()
    },
  )

  it('a holder whose lease another process took stops, says nothing, and commits nothing', async () => {
    const s = await store()
    let now = 0
    const state = new MemoryState(() => now)
    const slow = new FakeIssuer()
    const notices: string[] = []
    const a = start(s, slow, { state, notices, options: { leaseMs: 150, pendingAfterMs: 1 } })
    const b = start(s, new FakeIssuer(), { state, options: { leaseMs: 150 } })
    slow.hold()
    const first = a.handle('dev-1', payload('r1'))
    await slow.waiting(1)
    now += 10_000 // a's lease expired in the shared state (a was paused)
    const second = await answer(b, 'dev-1', payload('r1'))
    expect(await first).toBeUndefined() // its next renewal found the lease taken
    slow.release()
    const certificates = (await s.registry.device('dev-1'))?.certificates ?? []
    expect(certificates.map((c) => c.serialNumber)).toEqual([issuedSerial(second)])
  })
})
