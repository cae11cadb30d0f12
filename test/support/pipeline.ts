import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach } from 'vitest'
import type { Credentials, IssuanceOrder, Issuer } from '../../src/issuers/issuer.js'
import { toPem } from '../../src/pki/pem.js'
import type { Reply } from '../../src/protocol/messages.js'
import { AuditTrail } from '../../src/registration/audit-trail.js'
import type { RegistrationHook } from '../../src/registration/hook/client.js'
import type { HookCall, HookDecision } from '../../src/registration/hook/contract.js'
import type { Steps } from '../../src/registration/pipeline/registration.js'
import { RegistrationService, type RegistrationServiceOptions } from '../../src/registration/service.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import type { SharedState } from '../../src/state/shared-state.js'

/**
 * FakeIssuer issues made-up certificates (random DER, random serial) at once, or when `release`d while `hold`
 * is on; `failNext` makes the next issuance throw. It counts what it issued. Independent of every issuer in src/.
 */
export class FakeIssuer implements Issuer {
  readonly name = 'fake'
  issued = 0
  failNext: Error | undefined
  #held: (() => void)[] = []
  #holding = false
  #waiting: (() => void)[] = []

  async start(): Promise<void> {}
  isReady(): boolean {
    return true
  }
  async close(): Promise<void> {}

  /** hold makes issuances wait for `release`. */
  hold(): void {
    this.#holding = true
  }

  /** release lets every held issuance go on (and stops holding). */
  release(): void {
    this.#holding = false
    for (const go of this.#held.splice(0)) go()
  }

  /** waiting resolves once `n` issuances are held. */
  waiting(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => (this.#held.length >= n ? resolve() : void this.#waiting.push(check))
      check()
    })
  }

  async issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials> {
    if (this.#holding) {
      await new Promise<void>((resolve) => {
        this.#held.push(resolve)
        for (const w of this.#waiting.splice(0)) w()
      })
    }
    signal.throwIfAborted()
    const failure = this.failNext
    this.failNext = undefined
    if (failure) throw failure
    this.issued++
    const now = Date.now()
    return {
      certificatePem: toPem(randomBytes(64), 'CERTIFICATE'),
      caCertificatesPem: toPem(randomBytes(64), 'CERTIFICATE'),
      ...(order.csr ? {} : { privateKeyPem: toPem(randomBytes(32), 'PRIVATE KEY') }),
      serialNumber: randomBytes(16).toString('hex'),
      notBefore: new Date(now),
      notAfter: new Date(now + 86_400_000),
    }
  }
}

/**
 * FakeHook answers the pipeline's hook calls with `decide` (allow by default), at once or when `release`d while
 * `hold` is on; it keeps every call. The real client (HTTP, retries) is tested against a real server elsewhere.
 */
export class FakeHook implements RegistrationHook {
  readonly calls: HookCall[] = []
  #held: (() => void)[] = []
  #holding = false
  #waiting: (() => void)[] = []

  constructor(public decide: (call: HookCall) => HookDecision = () => ({ allow: true })) {}

  hold(): void {
    this.#holding = true
  }

  release(): void {
    this.#holding = false
    for (const go of this.#held.splice(0)) go()
  }

  /** waiting resolves once `n` calls are held. */
  waiting(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => (this.#held.length >= n ? resolve() : void this.#waiting.push(check))
      check()
    })
  }

  async ask(call: HookCall, _offered: unknown, signal: AbortSignal): Promise<HookDecision> {
    this.calls.push(call)
    if (this.#holding) {
      await new Promise<void>((resolve) => {
        this.#held.push(resolve)
        for (const w of this.#waiting.splice(0)) w()
      })
    }
    signal.throwIfAborted()
    return this.decide(call)
  }
}

/** OPTIONS are the product's defaults that matter to the pipeline (re-registration refused, 5-minute retries). */
export const pipelineOptions = (): RegistrationServiceOptions => ({
  policy: {
    allowedKeyAlgorithms: ['ECDSA-P256', 'Ed25519'],
    defaultKeyAlgorithm: 'ECDSA-P256',
    template: { dnsNames: [], uris: [], validityHours: 24 },
  },
  requestMaxBytes: 16_384,
  pendingAfterMs: 60_000,
  issuanceTimeoutMs: 60_000,
  rateLimit: { burst: 100, perMinute: 100 },
  replyCache: { ttlSeconds: 300, maxEntries: 100 },
  extraTrustPem: '',
  productionUrl: undefined,
  leaseMs: 10_000,
  lifecycle: {
    reRegistration: 'refuse',
    renewal: { windowFraction: 1, requireNewKey: true, allowServerKey: true },
    renewalRateLimit: { burst: 100, perMinute: 100 },
    denied: () => undefined,
  },
})

/** Store is what outlives a process: the registry file and the audit log's directory. */
export interface Store {
  readonly dir: string
  readonly registry: SqliteRegistry
}

export async function openStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-pipeline-'))
  return { dir, registry: new SqliteRegistry(join(dir, 'registry.sqlite')) }
}

/** startProcess is one bridge process's registration service on the store (a restart is another one). */
export function startProcess(
  store: Store,
  issuer: Issuer,
  extra: {
    options?: Partial<RegistrationServiceOptions>
    state?: SharedState
    steps?: Steps
    notices?: string[]
    /** told of each notice as it is sent */
    onNotice?: (notice: string) => void
    hook?: RegistrationHook
  } = {},
): RegistrationService {
  const logger = pino({ level: 'silent' })
  return new RegistrationService(
    {
      issuer,
      registry: store.registry,
      audit: new AuditTrail(join(store.dir, 'audit.log'), 'writer', logger),
      notify: (identity, notice) => {
        extra.notices?.push(`${identity} ${notice.status}`)
        extra.onNotice?.(`${identity} ${notice.status}`)
      },
      logger,
      state: extra.state,
      steps: extra.steps,
      hook: extra.hook,
    },
    { ...pipelineOptions(), ...extra.options },
  )
}

/** payload is a server-key request (or a CSR-mode one) as a device publishes it. */
export const payload = (requestId: string, extra: Record<string, unknown> = {}): Buffer =>
  Buffer.from(JSON.stringify({ requestId, ...extra }))

/**
 * pipelineHarness, called at a test file's top level, gives it registries and processes (services) that are closed
 * after each test.
 */
export function pipelineHarness() {
  const stores: Store[] = []
  const processes: RegistrationService[] = []
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((s) => s.close()))
    await Promise.all(stores.splice(0).map((s) => s.registry.close()))
  })
  return {
    processes,
    async store(): Promise<Store> {
      const s = await openStore()
      stores.push(s)
      return s
    },
    start(...args: Parameters<typeof startProcess>): RegistrationService {
      const service = startProcess(...args)
      processes.push(service)
      return service
    },
  }
}

/** answer is a service's reply to one payload of `identity`. */
export async function answer(
  service: RegistrationService,
  identity: string,
  body: Buffer,
): Promise<Reply | undefined> {
  return (await service.handle(identity, body))?.reply
}

export const issuedSerial = (reply: Reply | undefined): string | undefined =>
  reply?.status === 'issued' ? reply.serialNumber : undefined
export const errorCode = (reply: Reply | undefined): string | undefined =>
  reply?.status === 'rejected' ? reply.error.code : undefined
