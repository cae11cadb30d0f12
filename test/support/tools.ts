import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** RunResult is what a finished child process printed and how it exited. */
export interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** run executes a command without a shell and never rejects on a non-zero exit. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, {
      cwd: options.cwd,
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
      timeout: options.timeoutMs ?? 20_000,
      maxBuffer: 16 * 1024 * 1024,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string }
    if (e.code === 'ENOENT') {
      throw new Error(
        `${command} is not installed; scripts/install-test-tools.sh (run by npm test and .ci/run) installs it`,
      )
    }
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** openssl runs the openssl CLI and fails the test with its output if it exits non-zero. */
export async function openssl(args: readonly string[], cwd?: string): Promise<string> {
  const result = await run('openssl', args, cwd === undefined ? {} : { cwd })
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}
