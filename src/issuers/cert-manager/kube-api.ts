import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { sleep } from '../../common/abortable.js'
import { Backoff } from '../../common/backoff.js'
import { RegistrationError } from '../../protocol/errors.js'
import { ApiThrottle, type ApiThrottleOptions } from './api-throttle.js'

/** The cert-manager API group and version the bridge speaks. */
export const CERT_MANAGER_GROUP = 'cert-manager.io'
export const CERT_MANAGER_VERSION = 'v1'
const GROUP_VERSION = { group: CERT_MANAGER_GROUP, version: CERT_MANAGER_VERSION }

export type CustomPlural = 'certificates' | 'certificaterequests'

const MAX_ATTEMPTS = 6
const BASE_DELAY_MS = 100
const MAX_DELAY_MS = 5_000

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined
}

/** retryAfterMs is the Retry-After of an API answer, in milliseconds, or undefined. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiException)) return undefined
  const header = (err.headers as Record<string, string> | undefined)?.['retry-after']
  const seconds = header === undefined ? Number.NaN : Number(header)
  return Number.isFinite(seconds) ? seconds * 1000 : undefined
}

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/** isRetryable: 429, 5xx and network failures are worth another try; other answers and errors are final. */
function isRetryable(err: unknown): boolean {
  const status = statusOf(err)
  if (status !== undefined) return status === 429 || status >= 500
  const e = err as { type?: string; code?: string } | undefined
  return e?.type === 'system' || NETWORK_ERRORS.has(e?.code ?? '')
}

/** KubeObserver hears about API calls and watch restarts, for metrics (`verb` create or delete; `status` HTTP or `error`). */
export interface KubeObserver {
  apiRequest(verb: string, status: string): void
  watchRestarted(resource: string): void
}

/**
 * KubeApi is the bridge's only writer to Kubernetes: every call is throttled, and retried with exponential
 * backoff (honouring Retry-After) on 429, 5xx and network errors.
 */
export class KubeApi {
  readonly #custom: CustomObjectsApi
  readonly #core: CoreV1Api
  /** throttle is shared with the watchers: lists and watches spend the same budget as writes. */
  readonly throttle: ApiThrottle
  readonly #namespace: string
  readonly #logger: Logger
  readonly #observer: KubeObserver | undefined

  constructor(
    kc: KubeConfig,
    namespace: string,
    throttle: ApiThrottleOptions,
    logger: Logger,
    observer?: KubeObserver,
  ) {
    this.#observer = observer
    this.#custom = kc.makeApiClient(CustomObjectsApi)
    this.#core = kc.makeApiClient(CoreV1Api)
    this.throttle = new ApiThrottle(throttle)
    this.#namespace = namespace
    this.#logger = logger
  }

  async #call<T>(what: string, request: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const backoff = new Backoff({ initialMs: BASE_DELAY_MS, maxMs: MAX_DELAY_MS })
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted()
      try {
        const result = await this.throttle.run(request)
        this.#observer?.apiRequest(what.split(' ')[0] ?? '', '2xx')
        return result
      } catch (err) {
        this.#observer?.apiRequest(what.split(' ')[0] ?? '', String(statusOf(err) ?? 'error'))
        if (!isRetryable(err) || attempt >= MAX_ATTEMPTS) throw err
        const delay = backoff.next(retryAfterMs(err))
        this.#logger.warn(
          {
            what,
            status: statusOf(err),
            reason: String((err as Error)?.message).split('\n')[0],
            attempt,
            delayMs: Math.round(delay),
          },
          'API call failed; retrying',
        )
        await sleep(delay, signal)
      }
    }
  }

  /** create makes a cert-manager object; an object of that name already there (409) counts as done. */
  async create(plural: CustomPlural, body: object, signal: AbortSignal): Promise<'created' | 'exists'> {
    const namespace = this.#namespace
    try {
      await this.#call(
        `create ${plural}`,
        () => this.#custom.createNamespacedCustomObject({ ...GROUP_VERSION, namespace, plural, body }),
        signal,
      )
      return 'created'
    } catch (err) {
      if (statusOf(err) === 409) return 'exists'
      throw toIssuerError(err, `create ${plural}`)
    }
  }

  /** delete deletes a cert-manager object or a Secret; one already gone (404) counts as done. */
  async delete(plural: CustomPlural | 'secrets', name: string, signal: AbortSignal): Promise<void> {
    const what = `delete ${plural}/${name}`
    const namespace = this.#namespace
    try {
      await this.#call(
        what,
        () =>
          plural === 'secrets'
            ? this.#core.deleteNamespacedSecret({ name, namespace })
            : this.#custom.deleteNamespacedCustomObject({ ...GROUP_VERSION, namespace, plural, name }),
        signal,
      )
    } catch (err) {
      if (statusOf(err) !== 404) throw toIssuerError(err, what)
    }
  }
}

/** toIssuerError maps an API failure to a wire error: unavailable when retrying may help, failed otherwise. */
export function toIssuerError(err: unknown, what: string): RegistrationError {
  if (err instanceof RegistrationError) return err
  const status = statusOf(err)
  if (status !== undefined && status < 500 && status !== 429) {
    return new RegistrationError('ISSUANCE_FAILED', `the Kubernetes API refused to ${what} (${status})`, {
      cause: err,
    })
  }
  return new RegistrationError('ISSUER_UNAVAILABLE', 'the Kubernetes API is unavailable; retry later', {
    cause: err,
  })
}
