import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'

/** The system calls that make file data durable; each one a process makes is one sync counted. */
export const SYNC_CALLS = ['fsync', 'fdatasync', 'sync_file_range'] as const

/** straceAvailable tells whether strace is on PATH (the sync counts need it; without it they are left out). */
export const straceAvailable = (): boolean => spawnSync('strace', ['-V']).status === 0

/**
 * straceArgs runs a command under strace, recording only the sync calls of it and every thread and process it
 * starts (-f: libuv's thread pool, node:cluster workers) with their time (-ttt) and file (-y) into `file`.
 * --seccomp-bpf stops the traced process only at those calls, so the rest of its work runs at full speed.
 */
export function straceArgs(file: string): string[] {
  return ['-f', '--seccomp-bpf', '-qq', '-ttt', '-y', '-e', `trace=${SYNC_CALLS.join(',')}`, '-o', file, '--']
}

/** SyncCount is how many sync calls a traced server made in a time window, in all and per file. */
export interface SyncCount {
  readonly total: number
  readonly byFile: Record<string, number>
}

// "<pid> <epoch seconds> fdatasync(23</tmp/x/registry.sqlite-wal>) = 0" (or "... <unfinished ...>"); a
// "<... fdatasync resumed>" line ends a call already counted at its start
const CALL = new RegExp(`^\\d+\\s+(\\d+\\.\\d+)\\s+(?:${SYNC_CALLS.join('|')})\\(\\d+(?:<([^>]*)>)?`)

/** countSyncs reads a finished strace file and counts the sync calls that started between two epoch times (ms). */
export async function countSyncs(file: string, fromMs: number, toMs: number): Promise<SyncCount> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const byFile: Record<string, number> = {}
  let total = 0
  for (const line of text.split('\n')) {
    const match = CALL.exec(line)
    if (!match) continue
    const at = Number(match[1]) * 1000
    if (at < fromMs || at > toMs) continue
    total++
    const name = match[2] ? basename(match[2]) : '?'
    byFile[name] = (byFile[name] ?? 0) + 1
  }
  return { total, byFile }
}
