import { readFileSync } from 'node:fs'

/** rssKb reads a process's resident set size, in KiB, from /proc. */
export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN)
}

/** settle waits a moment for a server to finish work and collect garbage before a reading. */
export const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
