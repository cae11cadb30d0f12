import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

/** Mosquitto is a real mosquitto broker run by a test. */
export interface Mosquitto {
  readonly port: number
  readonly url: string
  readonly log: string[]
  stop(): Promise<void>
}

/**
 * startMosquitto runs the production broker the way the README does: TLS listener, client certificate
 * required and verified against `cafile` (the issuing CA), and resolves once mosquitto says it is running.
 */
export async function startMosquitto(options: {
  cafile: string
  certfile: string
  keyfile: string
  /** More configuration lines, e.g. an acl_file. */
  extra?: readonly string[]
}): Promise<Mosquitto> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'mrb-mosquitto-'))
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(
    conf,
    [
      // run as whoever runs the test, so mosquitto can read the test PKI's 0600 key files
      `user ${userInfo().username}`,
      'per_listener_settings false',
      'allow_anonymous true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      `listener ${port} 127.0.0.1`,
      `cafile ${options.cafile}`,
      `certfile ${options.certfile}`,
      `keyfile ${options.keyfile}`,
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.2',
      ...(options.extra ?? []),
      '',
    ].join('\n'),
  )
  let child: ChildProcess
  try {
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    throw new Error(`cannot start mosquitto: ${(err as Error).message}`)
  }
  const log: string[] = []
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) =>
      reject(new Error(`mosquitto is not installed or failed to start: ${err.message}`)),
    )
    child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${log.join('\n')}`)))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log.push(...chunk.trim().split('\n'))
      if (/mosquitto version \S+ running/.test(chunk)) resolve()
    })
  })
  return {
    port,
    url: `mqtts://localhost:${port}`,
    log,
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}
