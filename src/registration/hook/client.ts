import http from 'node:http'
import https from 'node:https'
import { sleep } from '../../common/abortable.js'
import { Backoff } from '../../common/backoff.js'
import type { ExpandedTemplate } from '../../issuers/template.js'
import { RegistrationError } from '../../protocol/errors.js'
import { type HookCall, type HookDecision, MalformedAnswer, parseAnswer } from './contract.js'

/** HookResult is how one call ended, for metrics: after its retries, the last attempt's failure. */
export type HookResult = 'allow' | 'deny' | 'error' | 'timeout'

/** HookObserver hears each call's result (after its retries) and duration: the metrics. */
export interface HookObserver {
  called(result: HookResult, seconds: number): void
}

/** RegistrationHook is asked once per registration whether it may be issued, and how (docs/hook.md). */
export interface RegistrationHook {
  /** ask answers the call, or throws HOOK_UNAVAILABLE (fail-closed), or the signal's reason when it aborts. */
  ask(
    call: HookCall,
    offered: ExpandedTemplate,
    signal: AbortSignal,
  ): Promise<HookDecision & { failedOpen?: string }>
}

/** HookTls is PEM: the CAs that sign the hook's certificate, and the bridge's client certificate and key (mTLS). */
export interface HookTls {
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: string | undefined
}

/** HookClientOptions are the validated `hook` settings, with the files they name already read. */
export interface HookClientOptions {
  readonly url: string
  /** Per attempt, from the moment the call is queued for a connection. */
  readonly timeoutMs: number
  /** Attempts after the first, with the one backoff (timeouts, 5xx, 429, refused connections, malformed answers). */
  readonly retries: number
  readonly retryBackoff?: { readonly initialMs: number; readonly maxMs: number } | undefined
  /** Connections to the hook at once; more calls wait for one (a slow hook under load queues, never floods). */
  readonly maxConcurrent: number
  /** A hook that cannot be asked allows the registration, unnarrowed (dangerous: see docs/hook.md). */
  readonly failOpen: boolean
  /** What HOOK_UNAVAILABLE tells the device to wait. */
  readonly retryAfterSeconds: number
  /** The TLS material in force (re-read when its files change): a new value is used from the next attempt. */
  readonly tls?: (() => HookTls) | undefined
  /** The bearer token in force (re-read when its file changes), or undefined for none. */
  readonly token?: (() => string | undefined) | undefined
}

const MAX_ANSWER_BYTES = 64 * 1024

/** AttemptFailure is one attempt's failure: retried unless `final`. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly result: 'error' | 'timeout',
    readonly final = false,
  ) {
    super(message)
  }
}

/**
 * HookClient calls the registration hook over HTTPS (http:// on loopback only, config-checked): one POST per
 * attempt on kept-alive connections, at most `maxConcurrent` at once, each attempt within `timeoutMs`, retried
 * with the one backoff. It never logs the token or the client key.
 */
export class HookClient implements RegistrationHook {
  readonly #options: HookClientOptions
  #agent: http.Agent
  #agentTls: HookTls | undefined
  readonly #observer: HookObserver | undefined
  #failuresInARow = 0
  #lastFailureAt = 0

  constructor(options: HookClientOptions, observer?: HookObserver) {
    this.#options = options
    this.#observer = observer
    this.#agent = this.#newAgent()
  }

  #newAgent(): http.Agent {
    const { maxConcurrent, url } = this.#options
    const pool = { keepAlive: true, maxSockets: maxConcurrent, maxFreeSockets: maxConcurrent }
    if (!url.startsWith('https:')) return new http.Agent(pool)
    this.#agentTls = this.#options.tls?.()
    const { ca, cert, key } = this.#agentTls ?? {}
    return new https.Agent({
      ...pool,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined || key === undefined ? {} : { cert, key }),
    })
  }

  /**
   * #currentAgent is the agent of the TLS material in force: reloaded material makes a new one; the old one is
   * closed once every attempt it carries has ended (each within timeoutMs).
   */
  #currentAgent(): http.Agent {
    if (this.#agentTls === undefined || this.#options.tls?.() === this.#agentTls) return this.#agent
    const old = this.#agent
    this.#agent = this.#newAgent()
    setTimeout(() => old.destroy(), this.#options.timeoutMs).unref()
    return this.#agent
  }

  /** failing is true after `calls` failed calls in a row, the last within `withinMs` (readiness). */
  failing(calls: number, withinMs: number, now = Date.now()): boolean {
    return this.#failuresInARow >= calls && now - this.#lastFailureAt < withinMs
  }

  async ask(
    call: HookCall,
    offered: ExpandedTemplate,
    signal: AbortSignal,
  ): Promise<HookDecision & { failedOpen?: string }> {
    const started = performance.now()
    const body = JSON.stringify(call)
    const backoff = new Backoff(this.#options.retryBackoff ?? { initialMs: 100, maxMs: 2_000 })
    let failure: AttemptFailure | undefined
    for (let attempt = 0; attempt <= this.#options.retries; attempt++) {
      if (attempt > 0) await sleep(backoff.next(), signal)
      try {
        const decision = parseAnswer(await this.#post(body, signal), offered)
        this.#failuresInARow = 0
        this.#observer?.called(decision.allow ? 'allow' : 'deny', (performance.now() - started) / 1000)
        return decision
      } catch (err) {
        signal.throwIfAborted()
        failure =
          err instanceof AttemptFailure
            ? err
            : new AttemptFailure(
                err instanceof MalformedAnswer ? err.message : `${(err as Error).message}`,
                'error',
              )
        if (failure.final) break
      }
    }
    const why = failure?.message ?? 'no attempt'
    this.#failuresInARow++
    this.#lastFailureAt = Date.now()
    this.#observer?.called(failure?.result ?? 'error', (performance.now() - started) / 1000)
    if (this.#options.failOpen) return { allow: true, failedOpen: why }
    throw new RegistrationError('HOOK_UNAVAILABLE', 'the registration hook is unavailable; retry later', {
      retryAfterSeconds: this.#options.retryAfterSeconds,
      cause: new Error(why),
    })
  }

  /** #post is one attempt: the answer's body on 200, else an AttemptFailure (a 4xx other than 408/429 is final). */
  #post(body: string, signal: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(this.#options.timeoutMs)
    const token = this.#options.token?.()
    const send = this.#options.url.startsWith('https:') ? https.request : http.request
    return new Promise<string>((resolve, reject) => {
      const req = send(this.#options.url, {
        method: 'POST',
        agent: this.#currentAgent(),
        signal: AbortSignal.any([signal, timeout]),
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
      })
      const fail = (err: Error): void => {
        if (timeout.aborted && !signal.aborted)
          reject(new AttemptFailure(`no answer within ${this.#options.timeoutMs} ms`, 'timeout'))
        else {
          const why = (err as NodeJS.ErrnoException).code ?? err.message
          reject(new AttemptFailure(`cannot reach the hook (${why})`, 'error'))
        }
      }
      req.on('error', fail)
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        if (status !== 200) {
          res.resume()
          const final = status >= 400 && status < 500 && status !== 408 && status !== 429
          reject(new AttemptFailure(`the hook answered HTTP ${status}`, 'error', final))
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk)
          else {
            reject(new AttemptFailure(`the answer is over ${MAX_ANSWER_BYTES} bytes`, 'error'))
            req.destroy()
          }
        })
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
        res.on('error', fail)
      })
      req.end(body)
    })
  }

  close(): void {
    this.#agent.destroy()
  }
}
