import { existsSync, readdirSync } from 'node:fs'
import { chmod, chown, mkdtemp } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { freePort } from './ports.js'
import { run } from './tools.js'

/** TestPostgres is a real PostgreSQL server (Debian's) on a free loopback port, in a temporary directory. */
export interface TestPostgres {
  readonly url: string
  /** The server's log file (what `log_statement=all` writes to, for one). */
  readonly logFile: string
  stop(): Promise<void>
}

/** pgBin finds a PostgreSQL program: on PATH, or where Debian keeps it (/usr/lib/postgresql/<version>/bin). */
function pgBin(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (existsSync(join(dir, name))) return join(dir, name)
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort().reverse() : []
  for (const v of versions) if (existsSync(join(root, v, 'bin', name))) return join(root, v, 'bin', name)
  throw new Error(`${name} is not installed; .ci/run installs it (apt-get install postgresql)`)
}

/**
 * startPostgres runs initdb and pg_ctl (as the postgres user when root: PostgreSQL refuses to run as root), with
 * extra server `settings` such as `log_statement=all`.
 */
export async function startPostgres(settings: readonly string[] = []): Promise<TestPostgres> {
  const root = userInfo().uid === 0
  const dir = await mkdtemp(join(tmpdir(), 'mrb-pg-'))
  await chmod(dir, 0o700)
  if (root) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  const as = (program: string, args: string[]) =>
    root
      ? run('runuser', ['-u', 'postgres', '--', pgBin(program), ...args], { timeoutMs: 60_000 })
      : run(pgBin(program), args, { timeoutMs: 60_000 })
  const data = join(dir, 'data')
  const init = await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr}`)
  const port = await freePort()
  const options = `-p ${port} -h 127.0.0.1 -k ${dir} -c fsync=off${settings.map((s) => ` -c ${s}`).join('')}`
  const started = await as('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start'])
  if (started.code !== 0) throw new Error(`pg_ctl start failed: ${started.stderr}${started.stdout}`)
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    logFile: join(dir, 'log'),
    async stop() {
      await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
    },
  }
}

/** postgresForSuite starts one PostgreSQL for the test file that calls it (beforeAll) and stops it (afterAll). */
export function postgresForSuite(): { readonly url: string } {
  let server: TestPostgres | undefined
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })
  return {
    get url(): string {
      if (!server) throw new Error('PostgreSQL is not started yet (use it inside a test)')
      return server.url
    },
  }
}
