import type { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'

/** ReadinessCondition is one thing the bridge needs to serve: `ok` is polled, `reason` names it when false. */
export interface ReadinessCondition {
  readonly reason: string
  ok(): boolean
}

/**
 * Readiness evaluates the bridge's readiness conditions (listener accepting, issuer able to issue, not shutting
 * down). Each change of state is logged once, whether it is noticed by a probe or by the periodic check.
 */
export class Readiness {
  readonly #conditions: ReadinessCondition[]
  readonly #logger: Logger
  #shuttingDown = false
  #last: string | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(conditions: readonly ReadinessCondition[], logger: Logger, checkEveryMs = 1_000) {
    this.#logger = logger
    this.#conditions = [
      ...conditions,
      { reason: 'the bridge is shutting down', ok: () => !this.#shuttingDown },
    ]
    this.#timer = setInterval(() => this.check(), checkEveryMs).unref()
    this.check()
  }

  /** check returns the reasons the bridge is not ready (empty when ready), logging a change of state once. */
  check(): string[] {
    const reasons = this.#conditions.filter((c) => !safely(c)).map((c) => c.reason)
    const state = reasons.join('; ')
    if (state !== this.#last) {
      const first = this.#last === undefined
      this.#last = state
      if (reasons.length === 0) this.#logger.info('ready')
      else if (!first || this.#shuttingDown) this.#logger.warn({ reasons }, 'not ready')
      else this.#logger.info({ reasons }, 'not ready yet')
    }
    return reasons
  }

  /** isReady is true when every condition holds. */
  isReady(): boolean {
    return this.check().length === 0
  }

  /** shuttingDown makes the bridge not ready for good, from now on. */
  shuttingDown(): void {
    this.#shuttingDown = true
    this.check()
  }

  /** close stops the periodic check. */
  close(): void {
    clearInterval(this.#timer)
  }
}

function safely(condition: ReadinessCondition): boolean {
  try {
    return condition.ok()
  } catch {
    return false
  }
}

/** validNow: a certificate whose validity window holds now. */
const validNow = (certificate: X509Certificate, now = Date.now()): boolean =>
  new Date(certificate.validFrom).getTime() <= now && now < new Date(certificate.validTo).getTime()

/**
 * expiryConditions: the bridge is not ready while the listener's certificate or the embedded CA is out of date
 * (expired or not yet valid: devices' handshakes or issuance would fail), or while no factory CA is (every
 * device's handshake would fail).
 */
export function expiryConditions(tls: {
  listenerCertificate: () => X509Certificate
  factoryCas: () => readonly X509Certificate[]
  issuingCa: () => X509Certificate | undefined
}): ReadinessCondition[] {
  return [
    {
      reason: 'the listener certificate has expired or is not yet valid',
      ok: () => validNow(tls.listenerCertificate()),
    },
    {
      reason: 'no factory CA of tls.clientCaFile is valid now',
      ok: () => tls.factoryCas().some((ca) => validNow(ca)),
    },
    {
      reason: 'the issuing CA certificate has expired or is not yet valid',
      ok: () => {
        const ca = tls.issuingCa()
        return !ca || validNow(ca)
      },
    },
  ]
}

/** Reachable is a store that reports whether its server can be reached (Redis shared state, PostgreSQL registry). */
export interface Reachable {
  available?(): boolean
}

/** storeConditions: the bridge is not ready while the shared state (Redis) or the registry (PostgreSQL) is unreachable. */
export function storeConditions(state: Reachable, registry: Reachable): ReadinessCondition[] {
  return [
    { reason: 'the shared state (Redis) is unreachable', ok: () => state.available?.() ?? true },
    { reason: 'the registry (PostgreSQL) is unreachable', ok: () => registry.available?.() ?? true },
  ]
}
