import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { FileWatcher } from './watch-files.js'

/**
 * readReloadedText reads a file the bridge reloads while it runs (deny list, gateway policy, allow-list) as
 * UTF-8, refusing what a write cut short leaves, as it refuses an unreadable file:
 * - an empty file, or one of white space only (`: > file`, a truncating save): an operator who means "nothing"
 *   writes it explicitly (e.g. `identities: []`);
 * - a file whose last line has no newline: cut mid-line, a list still parses (`- devi`), one entry short or
 *   with a stray one. Text files end with a newline; editors and `echo` write one.
 */
export function readReloadedText(path: string): string {
  const text = readFileSync(path, 'utf8')
  if (text.trim() === '') throw new Error(`${path} is empty; write an empty list explicitly`)
  if (!text.endsWith('\n')) throw new Error(`${path}: the last line has no newline (a write cut short?)`)
  return text
}

/** ReadText reads one file for a loader: refusing an empty one, and recording it so that it is watched too. */
export type ReadText = (path: string) => string

/** ReloadableFileOptions say what the file is (for log lines), how to load it and what holds without one. */
export interface ReloadableFileOptions<T> {
  /** Names the file in log lines, e.g. `gateway policy`: "<what> reloaded", "<what> refused; keeping the old one". */
  readonly what: string
  /** Loads the value; it reads every file (the file itself, an allow-list it names) through `read`. */
  readonly load: (file: string, read: ReadText) => T
  /** What is in force when no file is configured. */
  readonly empty: T
  /** Fields logged with "<what> reloaded". */
  readonly describe?: (value: T) => Record<string, unknown>
}

/** ReloadWatch says when a file is reloaded besides SIGHUP, and who hears of each outcome. */
export interface ReloadWatch {
  /** Reload when the file, or a file it names, changes (a file watch). SIGHUP reloads in any case. */
  readonly onChange: boolean
  /** Hears whether each reload was applied (true) or refused (false): the reload metrics. */
  readonly onResult?: ((ok: boolean) => void) | undefined
}

/**
 * ReloadableFile holds the value loaded from an operator's file (gateway policy, deny list) and replaces it
 * atomically when the file or one it names changes (the FileWatcher) or on SIGHUP. A file that does not load —
 * empty, unreadable, invalid — is refused with an error log line and the value in force stays. The constructor
 * loads the file and throws if it is bad: a bad file at start-up stops the bridge.
 */
export class ReloadableFile<T> {
  readonly #file: string | undefined
  readonly #logger: Logger
  readonly #options: ReloadableFileOptions<T>
  #value: T
  /** The files the value in force was read from, and those a refused reload tried to read (watched too). */
  #files: readonly string[] = []
  #watcher: FileWatcher | undefined
  #onResult: ((ok: boolean) => void) | undefined
  readonly #onSighup = (): boolean => this.reload()

  constructor(file: string | undefined, logger: Logger, options: ReloadableFileOptions<T>) {
    this.#file = file
    this.#logger = logger
    this.#options = options
    if (file === undefined) {
      this.#value = options.empty
      return
    }
    const read = new Set<string>([file])
    this.#value = this.#load(file, read)
    this.#files = [...read]
  }

  get current(): T {
    return this.#value
  }

  #load(file: string, read: Set<string>): T {
    return this.#options.load(file, (path) => {
      read.add(path)
      return readReloadedText(path)
    })
  }

  /** reload reads the file again; it returns false (and keeps the old value) when the file is bad. */
  reload(): boolean {
    if (this.#file === undefined) return true
    const { what, describe } = this.#options
    const read = new Set<string>([this.#file])
    try {
      this.#value = this.#load(this.#file, read)
    } catch (err) {
      // a file the refused version names (an allow-list not written yet) is watched too: writing it retries
      this.#watcher?.setPaths([...new Set([...this.#files, ...read])])
      this.#logger.error(
        { file: this.#file, err: (err as Error).message },
        `${what} refused; keeping the old one`,
      )
      this.#onResult?.(false)
      return false
    }
    this.#files = [...read]
    this.#watcher?.setPaths(this.#files)
    this.#logger.info({ file: this.#file, ...describe?.(this.#value) }, `${what} reloaded`)
    this.#onResult?.(true)
    return true
  }

  /** watch reloads on SIGHUP and, with `onChange`, when the file or one it names changes. */
  watch(options: ReloadWatch): void {
    if (this.#file === undefined) return
    this.#onResult = options.onResult
    process.off('SIGHUP', this.#onSighup)
    process.on('SIGHUP', this.#onSighup)
    if (!options.onChange || this.#watcher) return
    this.#watcher = new FileWatcher(this.#files, () => this.reload())
  }

  close(): void {
    process.off('SIGHUP', this.#onSighup)
    this.#watcher?.close()
    this.#watcher = undefined
  }
}
