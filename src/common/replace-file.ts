import { randomBytes } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'

/**
 * replaceFile writes `data` to `path` atomically: to a temporary file of its own in the same directory (named
 * with the process id and random bytes, so writers in other workers, replicas or the CLI sharing the directory
 * never write, rename or delete each other's temporary file), flushed, then renamed over `path`. Readers see the
 * old content or the new, never a partial file; the last rename wins. A failed write removes its temporary file.
 */
export async function replaceFile(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { mode, flush: true })
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
