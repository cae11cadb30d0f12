import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'

/** ReloadableFileOptions say what the file is (for log lines), how to load it and what holds without one. */
export interface ReloadableFileOptions<T> {
  /** Names the file in log lines, e.g. `gateway policy`: "<what> reloaded", "<what> refused; keeping the old one". */
  readonly what: string
  readonly load: (file: string) => T
  /** What is in force when no file is configured. */
  readonly empty: T
  /** Fields logged with "<what> reloaded". */
  readonly describe?: (value: T) => Record<string, unknown>
}

/**
 * ReloadableFile holds the value loaded from an operator's file (gateway policy, deny list) and replaces it
 * atomically when the file changes (file watch) or on SIGHUP. A file that does not load is refused and the
 * value in force stays. The constructor loads the file and throws if it is bad: a bad file at start-up stops
 * the bridge.
 */
export class ReloadableFile<T> {
  readonly #file: string | undefined
  readonly #logger: Logger
  readonly #options: ReloadableFileOptions<T>
  #value: T
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  readonly #onSighup = (): void => {
    this.reload()
  }

  constructor(file: string | undefined, logger: Logger, options: ReloadableFileOptions<T>) {
    this.#file = file
    this.#logger = logger
    this.#options = options
    this.#value = file === undefined ? options.empty : options.load(file)
  }

  /** current is the value in force. */
  get current(): T {
    return this.#value
  }

  /** reload reads the file again; it returns false (and keeps the old value) when the file is bad. */
  reload(): boolean {
    if (this.#file === undefined) return true
    const { what, load, describe } = this.#options
    try {
      this.#value = load(this.#file)
      this.#logger.info({ file: this.#file, ...describe?.(this.#value) }, `${what} reloaded`)
      return true
    } catch (err) {
      this.#logger.error(
        { file: this.#file, err: (err as Error).message },
        `${what} refused; keeping the old one`,
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
