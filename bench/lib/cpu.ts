import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** CLOCK_TICKS is the unit of /proc/<pid>/stat's CPU times (sysconf CLK_TCK; 100 on Linux). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** descendants lists a process and every process under it (node:cluster workers), from /proc. */
export function descendants(pid: number): number[] {
  let children: number[] = []
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
  return [pid, ...children.flatMap(descendants)]
}

/** cpuMs is the CPU time (user + system, ms) a process has used so far, from its own counters in /proc. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the command name (which may hold spaces) start at field 3; utime is 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return 0 // it exited
  }
}

/** serverCpuMs sums the CPU time of servers' processes and all their descendants (workers included). */
export function serverCpuMs(pids: readonly number[]): number {
  return pids.flatMap(descendants).reduce((sum, pid) => sum + cpuMs(pid), 0)
}
