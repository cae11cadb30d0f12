import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../test/support/ports.js'
import { type Running, start } from '../../test/support/process.js'
import { descendants } from './cpu.js'
import { straceArgs } from './syncs.js'

const dist = new URL('../../', import.meta.url).pathname // dist-bench/

/** Target is a server under load: where to connect, how to shape requests, and its process for RSS. */
export interface Target {
  readonly name: string
  readonly url: string
  readonly pids: number[]
  /** The strace record of the server's sync calls, when it runs under strace (startBridge's syncTrace). */
  readonly syncTrace?: string
  /** request builds a request payload for an identity; bare targets are told where to reply. */
  request(id: string, body: object): string
  stop(): Promise<void>
}

async function stopAll(processes: Running[]): Promise<void> {
  for (const p of processes) p.kill()
  await Promise.all(processes.map((p) => p.exited.catch(() => 0)))
}

/**
 * startBridge runs the bridge's CLI in its own process with limits opened up for load; with `syncTrace` (a file),
 * under strace recording its sync calls there (lib/syncs.ts). Its pids are the bridge's own, never strace's.
 */
export async function startBridge(
  stateDir: string,
  sets: string[] = [],
  options: { syncTrace?: string } = {},
): Promise<Target> {
  const args = [
    join(dist, 'src/cli.js'),
    'serve',
    '--state-dir',
    stateDir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log-level',
    'warn',
  ]
  const opened = [
    'health.port=0',
    'health.host=127.0.0.1',
    'registration.rateLimit.burst=1000000',
    'registration.rateLimit.perMinute=1000000',
    'limits.maxConnections=100000',
    'registration.replyCacheMaxEntries=1000',
    // the load cycles through a fixed set of devices, each registering again and again
    'lifecycle.reRegistration=allow',
    // the memory benchmark holds ten idle connections per device identity
    'limits.maxConnectionsPerIdentity=100',
    ...sets,
  ]
  // BENCH_BRIDGE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the bridge under load
  const nodeArgs = process.env.BENCH_BRIDGE_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  const command = [process.execPath, ...nodeArgs, ...args, ...opened.flatMap((s) => ['--set', s])]
  const trace = options.syncTrace
  const proc = trace
    ? start('strace', [...straceArgs(trace), ...command])
    : start(command[0] as string, command.slice(1))
  await proc.waitFor(/Bridge listening on mqtts:\/\/127\.0\.0\.1:\d+/)
  const port = /127\.0\.0\.1:(\d+)/.exec(proc.output())?.[1]
  // under strace, the bridge is strace's one child: signalled directly, strace then flushes its record and exits
  let stopped: Promise<void> | undefined
  const bridgePid = trace ? (descendants(proc.pid ?? 0)[1] ?? 0) : (proc.pid ?? 0)
  return {
    name: 'bridge',
    url: `mqtts://127.0.0.1:${port}`,
    pids: [bridgePid],
    ...(trace ? { syncTrace: trace } : {}),
    request: (_id, body) => JSON.stringify(body),
    // once: the benchmark stops a traced bridge to read its record, then again when it is done with it
    stop: () => {
      stopped ??= (async () => {
        if (trace && bridgePid) process.kill(bridgePid, 'SIGTERM')
        else proc.kill()
        await proc.exited.catch(() => 0)
      })()
      return stopped
    },
  }
}

/** startAedesEcho runs plain Aedes on TLS with an echo responder, in its own process. */
export async function startAedesEcho(pkiDir: string): Promise<Target> {
  const proc = start(process.execPath, [join(dist, 'bench/servers/aedes-echo.js'), pkiDir])
  await proc.waitFor(/listening \d+/)
  const port = /listening (\d+)/.exec(proc.output())?.[1]
  return {
    name: 'aedes',
    url: `mqtts://127.0.0.1:${port}`,
    pids: [proc.pid ?? 0],
    request: (id, body) => JSON.stringify({ ...body, replyTo: `registration/${id}/reply` }),
    stop: () => stopAll([proc]),
  }
}

/** startMosquittoEcho runs mosquitto (mutual TLS, factory CA) and an MQTT responder process beside it. */
export async function startMosquittoEcho(pkiDir: string): Promise<Target> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'mrb-bench-mosquitto-'))
  await writeFile(
    join(dir, 'mosquitto.conf'),
    [
      `user ${userInfo().username}`,
      'log_dest stderr',
      'log_type notice',
      'log_type information',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'require_certificate true',
      `cafile ${join(pkiDir, 'factory-ca.crt')}`,
      `certfile ${join(pkiDir, 'server.crt')}`,
      `keyfile ${join(pkiDir, 'server.key')}`,
      'max_connections -1',
      'set_tcp_nodelay true',
      '',
    ].join('\n'),
  )
  const broker = start('mosquitto', ['-c', join(dir, 'mosquitto.conf')])
  await broker.waitFor(/mosquitto version \S+ running/)
  const url = `mqtts://127.0.0.1:${port}`
  const responder = start(process.execPath, [join(dist, 'bench/servers/mqtt-responder.js'), pkiDir, url])
  await responder.waitFor(/responding/)
  return {
    name: 'mosquitto',
    url,
    pids: [broker.pid ?? 0, responder.pid ?? 0],
    request: (id, body) => JSON.stringify({ ...body, replyTo: `registration/${id}/reply` }),
    stop: () => stopAll([responder, broker]),
  }
}
