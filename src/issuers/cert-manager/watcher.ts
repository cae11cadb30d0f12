import { type KubeConfig, type KubernetesObject, Watch } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { sleep } from '../../common/abortable.js'
import { Backoff, type BackoffOptions } from '../../common/backoff.js'
import type { ApiThrottle } from './api-throttle.js'
import { retryAfterMs } from './kube-api.js'
import { type Check, Waiters } from './waiters.js'

/** ListFn lists the watched objects; the watcher calls it to sync and to re-list after 410 Gone. */
type ListFn<T> = () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>

/** WatchTuning is client-go's reflector schedule (issuer.certManager.watch*): a backoff without jitter. */
export interface WatchTuning extends Pick<BackoffOptions, 'initialMs' | 'maxMs'> {
  /** A watch that stayed up this long resets the backoff (client-go: 2 min); a success alone does not. */
  readonly resetAfterMs: number
  /** The server ends each watch after this long (client-go: 5–10 min); the watcher then re-watches at once. */
  readonly timeoutSeconds: number
}

interface ResourceWatcherOptions<T> {
  readonly kind: string
  readonly kc: KubeConfig
  /** The collection path, e.g. /api/v1/namespaces/x/secrets. */
  readonly path: string
  readonly list: ListFn<T>
  readonly labelSelector?: string
  readonly fieldSelector?: string
  /** Every list and every watch request takes a token: watch traffic counts in the API budget. */
  readonly throttle: ApiThrottle
  readonly tuning: WatchTuning
  readonly logger: Logger
  /** Hears every restart after a failure (for metrics). */
  readonly onRestart?: ((kind: string) => void) | undefined
}

const GONE = Symbol('gone')
const SHORT_WATCH_MS = 1_000

/**
 * ResourceWatcher is one shared list-and-watch for one resource kind, built on client-node's public Watch,
 * as client-go's reflector does it: bookmarks requested, a server-side watch timeout (then an immediate
 * re-watch from the last resourceVersion), a re-list on 410 Gone, and on failure a backoff that only resets
 * once a watch has stayed up for `resetAfterMs`, honouring Retry-After. Waiting never polls.
 */
export class ResourceWatcher<T extends KubernetesObject> {
  readonly kind: string
  readonly #options: ResourceWatcherOptions<T>
  readonly #watch: Watch
  readonly #cache = new Map<string, T>()
  readonly #waiters = new Waiters<T>()
  readonly #listeners = new Set<(name: string, object: T | undefined) => void>()
  readonly #backoff: Backoff
  readonly #logger: Logger
  readonly #stop = new AbortController()
  #resourceVersion: string | undefined
  #synced = false
  #up = false
  #upSince = 0
  #abortWatch: (() => void) | undefined
  #loop: Promise<void> | undefined
  /** delays are the backoff delays handed out so far (the most recent 50), for logs and tests. */
  readonly delays: number[] = []

  constructor(options: ResourceWatcherOptions<T>) {
    this.kind = options.kind
    this.#options = options
    this.#watch = new Watch(options.kc)
    this.#backoff = new Backoff({ ...options.tuning, jitter: 0 })
    this.#logger = options.logger.child({ watch: options.kind })
  }

  /** synced is true once the first list has completed. */
  get synced(): boolean {
    return this.#synced
  }

  /** healthy is true while the cache is synced and a watch is open. */
  get healthy(): boolean {
    return this.#synced && this.#up
  }

  /** start lists and begins watching; it resolves once the cache is synced (retrying the list with backoff). */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#loop = this.#run(resolve).catch(reject)
    })
  }

  async #run(onSynced: () => void): Promise<void> {
    const signal = this.#stop.signal
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) {
          await this.#relist()
          onSynced()
        }
        const ended = await this.#watchOnce()
        if (ended === GONE) this.#resourceVersion = undefined
        this.#logger.debug({ gone: ended === GONE }, 'watch ended; watching again')
      } catch (err) {
        this.#up = false
        if (signal.aborted) return
        if (this.#upSince && performance.now() - this.#upSince >= this.#options.tuning.resetAfterMs)
          this.#backoff.reset()
        this.#upSince = 0
        const delay = this.#backoff.next(retryAfterMs(err))
        this.#options.onRestart?.(this.kind)
        this.delays.push(delay)
        if (this.delays.length > 50) this.delays.shift()
        this.#logger.warn(
          { err: (err as Error)?.message ?? String(err), delayMs: delay },
          'watch failed; retrying',
        )
        await sleep(delay, signal).catch(() => undefined)
      }
    }
  }

  async #relist(): Promise<void> {
    const list = await this.#options.throttle.run(this.#options.list)
    const seen = new Map<string, T>()
    for (const item of list.items) if (item.metadata?.name) seen.set(item.metadata.name, item)
    const gone = [...this.#cache.keys()].filter((name) => !seen.has(name))
    this.#cache.clear()
    for (const [name, item] of seen) this.#cache.set(name, item)
    this.#resourceVersion = list.metadata?.resourceVersion ?? ''
    this.#synced = true
    for (const name of gone) this.#notify(name, undefined)
    for (const [name, item] of seen) this.#notify(name, item)
  }

  #watchOnce(): Promise<typeof GONE | undefined> {
    const { path, labelSelector, fieldSelector, tuning, throttle } = this.#options
    return new Promise((resolve, reject) => {
      const started = performance.now()
      let events = 0
      let gone = false
      let ended = false
      const done = (err: unknown): void => {
        ended = true
        this.#abortWatch = undefined
        if (gone) resolve(GONE)
        else if (this.#stop.signal.aborted) resolve(undefined)
        else if (err) reject(err)
        // client-go: a watch the server closes at once without an event is a failure, not a timeout
        else if (events === 0 && performance.now() - started < SHORT_WATCH_MS)
          reject(new Error('very short watch'))
        else resolve(undefined)
      }
      const onEvent = (type: string, object: T & { code?: number }): void => {
        events++
        if (type === 'ERROR') {
          if (object.code === 410) {
            gone = true
            this.#abortWatch?.()
          } else {
            const abort = this.#abortWatch
            done(new Error(`watch error ${object.code}: ${JSON.stringify(object)}`))
            abort?.()
          }
          return
        }
        const rv = object.metadata?.resourceVersion
        if (rv) this.#resourceVersion = rv
        const name = object.metadata?.name
        if (type === 'BOOKMARK' || !name) return
        if (type === 'DELETED') this.#cache.delete(name)
        else this.#cache.set(name, object)
        this.#notify(name, type === 'DELETED' ? undefined : object)
      }
      const query = {
        resourceVersion: this.#resourceVersion || undefined,
        allowWatchBookmarks: true,
        timeoutSeconds: tuning.timeoutSeconds,
        labelSelector,
        fieldSelector,
      }
      throttle
        .run(() => this.#watch.watch(path, query, onEvent as never, done))
        .then((controller) => {
          if (ended) return
          this.#abortWatch = () => controller.abort()
          if (this.#stop.signal.aborted) {
            controller.abort()
            return
          }
          if (!this.#up && this.delays.length > 0) this.#logger.info('watch recovered')
          this.#up = true
          this.#upSince ||= performance.now()
        }, done)
    })
  }

  get(name: string): T | undefined {
    return this.#cache.get(name)
  }

  list(): T[] {
    return [...this.#cache.values()]
  }

  /** onChange calls `listener` after every change of the cache (add, update, delete, re-list). */
  onChange(listener: (name: string, object: T | undefined) => void): void {
    this.#listeners.add(listener)
  }

  #notify(name: string, object: T | undefined): void {
    for (const listener of this.#listeners) listener(name, object)
    this.#waiters.notify(name, object)
  }

  /**
   * waitFor resolves with the first non-undefined result of `check` on the named object, starting from the
   * cache (the object may be ready before anyone waits); it rejects if `check` throws or `signal` aborts.
   */
  waitFor<R>(name: string, check: Check<T, R>, signal: AbortSignal): Promise<R> {
    return this.#waiters.waitFor(name, this.get(name), check, signal)
  }

  async stop(): Promise<void> {
    this.#stop.abort()
    this.#abortWatch?.()
    await this.#loop
  }
}
