import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { opensslCsr } from '../../support/csr.js'
import {
  answer,
  errorCode,
  FakeHook,
  FakeIssuer,
  issuedSerial,
  payload,
  pipelineHarness,
} from '../../support/pipeline.js'

/**
 * The hook step (pipeline/hook.ts) on every path, with a fake hook and issuer and the real SQLite registry: asked
 * once per issuance (a renewal's and a gateway device's retries are replays), under the lease, before issue. The
 * step's place is pinned in pipeline.test.ts with the others.
 */
const { store, start } = pipelineHarness()

describe('the hook step', () => {
  it('hook after replay, on every path: a renewal and a gateway device retried get the same endpoint, asked once', async () => {
    const s = await store()
    let n = 0
    const hook = new FakeHook(() => ({ allow: true, endpoint: `mqtts://assigned-${++n}.example:8883` }))
    const service = start(s, new FakeIssuer(), { hook })
    const first = issuedSerial(await answer(service, 'dev-1', payload('r1'))) as string
    const credential = {
      kind: 'operational' as const,
      serialNumber: first,
      sha256Fingerprint: '',
      spki: Buffer.alloc(1),
    }
    const renewals = [
      (await service.handle('dev-1', payload('renew-1'), credential))?.reply,
      (await service.handle('dev-1', payload('renew-1'), credential))?.reply,
    ]
    const context = {
      registeredBy: 'gw-1',
      requestId: 'batch-1',
      log: pino({ level: 'silent' }),
      vet: async () => ({ takeOver: false }),
      spend: async () => {},
    }
    const items = [
      await service.issueFor('sensor-1', { keyAlgorithm: 'ECDSA-P256' }, context),
      await service.issueFor('sensor-1', { keyAlgorithm: 'ECDSA-P256' }, context),
    ]
    const endpoints = [...renewals, ...items].map((r) =>
      r?.status === 'issued' ? r.endpoint?.url : r?.status,
    )
    expect(endpoints).toEqual([
      'mqtts://assigned-2.example:8883',
      'mqtts://assigned-2.example:8883',
      'mqtts://assigned-3.example:8883',
      'mqtts://assigned-3.example:8883',
    ])
    expect(hook.calls.map((c) => [c.identity, c.kind, c.gateway])).toEqual([
      ['dev-1', 'registration', null],
      ['dev-1', 'renewal', null],
      ['sensor-1', 'registration', 'gw-1'],
    ])
  })

  it('hook after replay: a gateway device in CSR mode, replayed from the registry after a restart, keeps its endpoint', async () => {
    const s = await store()
    const hook = new FakeHook(() => ({ allow: true, endpoint: 'mqtts://gw-assigned.example:8883' }))
    const context = {
      registeredBy: 'gw-1',
      requestId: 'batch-1',
      log: pino({ level: 'silent' }),
      vet: async () => ({ takeOver: false }),
      spend: async () => {},
    }
    const item = { csr: (await opensslCsr('/CN=sensor-1')).csr }
    const first = await start(s, new FakeIssuer(), { hook }).issueFor('sensor-1', item, context)
    const replayed = await start(s, new FakeIssuer(), { hook }).issueFor('sensor-1', item, context)
    expect(replayed.serialNumber).toBe(first.serialNumber)
    expect([first.endpoint?.url, replayed.endpoint?.url]).toEqual([
      'mqtts://gw-assigned.example:8883',
      'mqtts://gw-assigned.example:8883',
    ])
    expect(hook.calls).toHaveLength(1)
  })

  it('hook before issue: a denied registration is REGISTRATION_DENIED with the reason, and nothing is issued', async () => {
    const s = await store()
    const issuer = new FakeIssuer()
    const hook = new FakeHook(() => ({ allow: false, reason: 'not in the inventory' }))
    const reply = await answer(start(s, issuer, { hook }), 'dev-1', payload('r1'))
    expect(reply).toMatchObject({
      status: 'rejected',
      error: { code: 'REGISTRATION_DENIED', message: 'not in the inventory', retryable: false },
    })
    expect(issuer.issued).toBe(0)
    expect(await s.registry.device('dev-1')).toBeUndefined()
  })

  it('hook under the lease: while a slow hook is asked, another request of the identity waits its turn', async () => {
    const hook = new FakeHook()
    const issuer = new FakeIssuer()
    const service = start(await store(), issuer, { hook })
    hook.hold()
    const a = service.handle('dev-1', payload('r1'))
    await hook.waiting(1)
    const same = await service.handle('dev-1', payload('r1'))
    const other = await service.handle('dev-1', payload('r2'))
    hook.release()
    expect((await a)?.reply.status).toBe('issued')
    expect(same).toBeUndefined() // the holder answers
    expect(errorCode(other?.reply)).toBe('REGISTRATION_IN_PROGRESS')
    expect([hook.calls.length, issuer.issued]).toEqual([1, 1])
  })

  it('a device waiting for a slow hook is told pending, once (not again while issuing)', async () => {
    const hook = new FakeHook()
    const notices: string[] = []
    let told: () => void = () => {}
    const pending = new Promise<void>((resolve) => {
      told = resolve
    })
    const service = start(await store(), new FakeIssuer(), {
      hook,
      notices,
      onNotice: () => told(),
      options: { pendingAfterMs: 1 },
    })
    hook.hold()
    const answered = answer(service, 'dev-1', payload('r1'))
    await pending
    hook.release()
    expect((await answered)?.status).toBe('issued')
    expect(notices).toEqual(['dev-1 pending'])
  })
})
