import {
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
} from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { Backoff } from '../../common/backoff.js'

/** ListFn lists the watched objects; the informer calls it to sync and to re-list after 410 Gone. */
export type ListFn<T> = () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>

/** Verdict is what a waiter makes of an object: keep waiting (undefined), a result, or a thrown error. */
export type Check<T, R> = (object: T | undefined) => R | undefined

interface Waiter<T> {
  evaluate(object: T | undefined): boolean
}

const RESTART_BASE_MS = 200
const RESTART_MAX_MS = 10_000

/**
 * ResourceWatcher is one shared informer for one resource kind, filtered by the bridge's label, however many
 * registrations wait on it. Waiting never polls: a waiter checks the cache once, then every event for its name.
 * client-node's informer stops for good on any watch error other than 410; this restarts it with backoff
 * (a re-list brings every change missed meanwhile, as events).
 */
export class ResourceWatcher<T extends KubernetesObject> {
  readonly kind: string
  readonly #informer: Informer<T> & ObjectCache<T>
  readonly #waiters = new Map<string, Set<Waiter<T>>>()
  readonly #logger: Logger
  #synced = false
  #stopped = false
  readonly #backoff = new Backoff({ initialMs: RESTART_BASE_MS, maxMs: RESTART_MAX_MS, jitter: 0 })
  #restartTimer: NodeJS.Timeout | undefined
  readonly #onRestart: ((kind: string) => void) | undefined

  constructor(
    kind: string,
    kc: KubeConfig,
    path: string,
    list: ListFn<T>,
    labelSelector: string,
    logger: Logger,
    onRestart?: (kind: string) => void,
  ) {
    this.#onRestart = onRestart
    this.kind = kind
    this.#logger = logger.child({ watch: kind })
    this.#informer = makeInformer(kc, path, list as never, labelSelector)
    const notify = (object: T): void => this.#notify(object.metadata?.name, object)
    this.#informer.on('add', notify)
    this.#informer.on('update', notify)
    this.#informer.on('delete', (object) => this.#notify(object.metadata?.name, undefined))
    this.#informer.on('connect', () => {
      this.#backoff.reset()
    })
    this.#informer.on('error', (err) => this.#restart(err))
  }

  /** synced is true once the first list has completed. */
  get synced(): boolean {
    return this.#synced
  }

  /** start lists and begins watching; it resolves once the cache is synced. */
  async start(): Promise<void> {
    this.#stopped = false
    await this.#informer.start()
    this.#markSynced()
  }

  /** A list that failed leaves no resourceVersion (and has scheduled a restart through the error event). */
  #markSynced(): void {
    const rv = (this.#informer as unknown as { latestResourceVersion(): string }).latestResourceVersion()
    if (rv) this.#synced = true
  }

  #restart(err: unknown): void {
    if (this.#stopped || this.#restartTimer) return
    const delay = this.#backoff.next()
    this.#onRestart?.(this.kind)
    this.#logger.warn(
      { err: (err as Error)?.message ?? String(err), delayMs: delay },
      'watch failed; restarting',
    )
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      if (this.#stopped) return
      this.#informer.start().then(
        () => this.#markSynced(),
        (e: unknown) => this.#restart(e),
      )
    }, delay)
  }

  /** get reads the cache. */
  get(name: string, namespace: string): T | undefined {
    return this.#informer.get(name, namespace)
  }

  #notify(name: string | undefined, object: T | undefined): void {
    if (name === undefined) return
    for (const waiter of this.#waiters.get(name) ?? []) waiter.evaluate(object)
  }

  /**
   * waitFor resolves with the first non-undefined result of `check` on the named object, starting from the
   * cache (the object may be ready before anyone waits); it rejects if `check` throws or `signal` aborts.
   */
  waitFor<R>(name: string, namespace: string, check: Check<T, R>, signal: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiters = this.#waiters.get(name) ?? new Set<Waiter<T>>()
      const finish = (): void => {
        waiters.delete(waiter)
        if (waiters.size === 0) this.#waiters.delete(name)
        signal.removeEventListener('abort', onAbort)
      }
      const waiter: Waiter<T> = {
        evaluate: (object) => {
          try {
            const result = check(object)
            if (result === undefined) return false
            finish()
            resolve(result)
          } catch (err) {
            finish()
            reject(err)
          }
          return true
        },
      }
      const onAbort = (): void => {
        finish()
        reject(signal.reason)
      }
      if (signal.aborted) return reject(signal.reason)
      if (waiter.evaluate(this.get(name, namespace))) return
      signal.addEventListener('abort', onAbort, { once: true })
      waiters.add(waiter)
      this.#waiters.set(name, waiters)
    })
  }

  /** stop ends the watch. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#restartTimer)
    await this.#informer.stop()
  }
}
