import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'
import { EMPTY_POLICY, type GatewayPolicy, loadGatewayPolicy } from './gateway-policy.js'

/**
 * GatewayPolicySource holds the current gateway policy and replaces it atomically when the file changes (file
 * watch) or on SIGHUP. A file that does not load is refused and the policy in force stays.
 */
export class GatewayPolicySource {
  readonly #file: string | undefined
  readonly #logger: Logger
  #policy: GatewayPolicy
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  readonly #onSighup = (): void => {
    this.reload()
  }

  /** GatewayPolicySource loads the file now and throws if it is bad: a bad policy at start-up stops the bridge. */
  constructor(file: string | undefined, logger: Logger) {
    this.#file = file
    this.#logger = logger
    this.#policy = file === undefined ? EMPTY_POLICY : loadGatewayPolicy(file)
  }

  /** current is the policy in force. */
  get current(): GatewayPolicy {
    return this.#policy
  }

  /** reload reads the file again; it returns false (and keeps the old policy) when the file is bad. */
  reload(): boolean {
    if (this.#file === undefined) return true
    try {
      this.#policy = loadGatewayPolicy(this.#file)
      this.#logger.info({ file: this.#file, rules: this.#policy.rules.length }, 'gateway policy reloaded')
      return true
    } catch (err) {
      this.#logger.error(
        { file: this.#file, err: (err as Error).message },
        'gateway policy refused; keeping the old one',
      )
      return false
    }
  }

  /**
   * watch reloads on SIGHUP and, with `files`, when the file is written or replaced (the directory is watched:
   * editors rename).
   */
  watch(files: boolean): void {
    const file = this.#file
    if (file === undefined) return
    process.off('SIGHUP', this.#onSighup)
    process.on('SIGHUP', this.#onSighup)
    if (!files || this.#watcher) return
    this.#watcher = watch(dirname(file), (_event, name) => {
      // a Kubernetes ConfigMap volume swaps its `..data` symlink rather than touching the file
      if (name !== basename(file) && !name?.startsWith('..')) return
      // a write arrives as several events: reload once they settle
      clearTimeout(this.#debounce)
      this.#debounce = setTimeout(() => this.reload(), 100)
    })
  }

  /** close stops watching. */
  close(): void {
    process.off('SIGHUP', this.#onSighup)
    clearTimeout(this.#debounce)
    this.#watcher?.close()
    this.#watcher = undefined
  }
}
