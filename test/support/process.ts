import { spawn } from 'node:child_process'

/** Running is a child process whose output a test can wait on. */
export interface Running {
  readonly pid: number | undefined
  readonly output: () => string
  /** waitFor resolves when the combined output matches, or rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<void>
  readonly exited: Promise<number>
  kill(): void
  /** signal sends a signal (SIGKILL for a crash, SIGTERM for a stop). */
  signal(name: NodeJS.Signals): void
}

/**
 * start spawns a command without a shell and records everything it prints. `group` makes it lead a process
 * group of its own, which its children join: `process.kill(-pid, 0)` then tells whether any of them is left.
 */
export function start(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; group?: boolean } = {},
): Running {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: options.group === true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8')
    for (const l of listeners) l()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`${command} could not start: ${err.message}`)))
    child.once('close', (code) => resolve(code ?? -1))
  })
  return {
    pid: child.pid,
    output: () => output,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(output)) {
            listeners.delete(check)
            resolve()
          }
        }
        listeners.add(check)
        check()
        exited.then((code) => {
          listeners.delete(check)
          if (!pattern.test(output))
            reject(new Error(`${command} exited (${code}) before printing ${pattern}:\n${output}`))
        }, reject)
      })
    },
    exited,
    kill: () => child.kill('SIGTERM'),
    signal: (name) => child.kill(name),
  }
}
