import { createHash } from 'node:crypto'
import { type FSWatcher, readFileSync, watch } from 'node:fs'
import { dirname } from 'node:path'

const digest = (path: string): string => {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex')
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`
  }
}

/**
 * FileWatcher calls back with the files whose content changed: the one file-watching mechanism of the bridge
 * (TLS material, deny list, gateway policy and its allow-lists). It watches each file's directory rather than
 * the file, so it sees files replaced by rename and Kubernetes Secret and ConfigMap mounts, where the
 * kubelet swaps the `..data` symlink; every event re-reads the watched files and compares their digests, so
 * spurious events cost a read and nothing else. Events within `settleMs` are handled together.
 */
export class FileWatcher {
  readonly #digests = new Map<string, string>()
  readonly #watchers = new Map<string, FSWatcher>()
  readonly #onChange: (changed: ReadonlySet<string>) => void
  readonly #settleMs: number
  #timer: NodeJS.Timeout | undefined

  constructor(paths: readonly string[], onChange: (changed: ReadonlySet<string>) => void, settleMs = 50) {
    this.#onChange = onChange
    this.#settleMs = settleMs
    this.setPaths(paths)
  }

  /**
   * setPaths makes `paths` the watched files (e.g. the allow-lists a reloaded gateway policy names): a file
   * already watched keeps its digest, a new one is read now, and directories no longer needed are let go.
   */
  setPaths(paths: readonly string[]): void {
    const wanted = new Set(paths)
    for (const path of this.#digests.keys()) if (!wanted.has(path)) this.#digests.delete(path)
    for (const path of wanted) if (!this.#digests.has(path)) this.#digests.set(path, digest(path))
    const dirs = new Set([...wanted].map((p) => dirname(p)))
    for (const [dir, watcher] of this.#watchers) {
      if (dirs.has(dir)) continue
      watcher.close()
      this.#watchers.delete(dir)
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#schedule())
        watcher.on('error', () => {}) // a directory that goes away: the files read as unreadable from then on
        this.#watchers.set(dir, watcher)
      } catch {
        // no such directory (yet): its files read as unreadable; SIGHUP or a restart picks them up
      }
    }
  }

  #schedule(): void {
    if (this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.check()
    }, this.#settleMs)
  }

  /** check re-reads every watched file now and calls back when any changed. */
  check(): void {
    const changed = new Set<string>()
    for (const [path, before] of this.#digests) {
      const now = digest(path)
      if (now === before) continue
      this.#digests.set(path, now)
      changed.add(path)
    }
    if (changed.size > 0) this.#onChange(changed)
  }

  close(): void {
    clearTimeout(this.#timer)
    for (const watcher of this.#watchers.values()) watcher.close()
    this.#watchers.clear()
  }
}
