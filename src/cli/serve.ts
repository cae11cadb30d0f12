import cluster from 'node:cluster'
import { DEV_PKI_WARNING, devPkiDir, startBridge } from '../app/start.js'
import { runPrimary, type WorkerMessage, workerCount } from '../cluster/primary.js'
import { WORKER_SLOT_ENV } from '../cluster/worker-slot.js'
import { createLogger } from '../logger.js'
import { createDevPki, devPkiExists } from '../pki/dev-pki.js'
import { CONFIG_OPTIONS, configOf, type Flags } from './usage-error.js'

export const SERVE_HELP = `Usage: registration-bridge serve [options]

Runs the bridge. With no configuration it uses the embedded CA and a development PKI,
created under ./.registration-bridge/pki on first run.

Options:
  -c, --config FILE      YAML or JSON configuration file
  --set SETTING=VALUE    override one setting, e.g. --set limits.maxConnections=500 (repeatable)
  --host HOST            listen address (listen.host)
  --port PORT            listen port (listen.port; 0 picks a free port)
  --state-dir DIR        where the development PKI and audit log live (stateDir)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent (log.level)
  --workers N            bridge processes on the listener port (state.workers; 0: one per core
                         with state.redis.url, else 1); more than 1 needs state.redis.url
Environment: every setting also reads MRB_<SETTING>, e.g. MRB_LISTEN_PORT=8883 (see docs/configuration.md).`

/** STOP_MARGIN_MS is how long past shutdown.gracePeriodMs a stop may take before the process exits 1 anyway. */
const STOP_MARGIN_MS = 10_000

/** SERVE_OPTIONS: a convenience flag sets the setting it names in SERVE_HELP. */
export const SERVE_OPTIONS = {
  ...CONFIG_OPTIONS,
  host: { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
} as const

/**
 * serve starts the bridge and stops it cleanly on SIGINT or SIGTERM: no new connections, registrations in
 * flight answered within shutdown.gracePeriodMs, then exit 0 (1 if stopping failed). A start that fails, in
 * any process mode, exits non-zero with nothing left running (a worker's failure stops the primary too).
 */
export async function serve(flags: Flags<typeof SERVE_OPTIONS>): Promise<void> {
  const config = configOf(flags, {
    'listen.host': flags.host,
    'listen.port': flags.port,
    'log.level': flags['log-level'],
    'state.workers': flags.workers,
  })
  const workers = workerCount(config.state)
  if (cluster.isPrimary && workers > 1) {
    // made once, before the workers start, so that they never race to create it
    if (config.usesDevPki && !(await devPkiExists(devPkiDir(config)))) {
      await createDevPki(devPkiDir(config))
      process.stderr.write(`Created a development PKI in ${devPkiDir(config)}\n`)
    }
    if (config.usesDevPki) process.stderr.write(`WARNING: ${DEV_PKI_WARNING}\n`)
    // each worker runs this same command as a full bridge; the primary only starts and replaces them
    const port = await runPrimary(workers, (line) => process.stderr.write(`${line}\n`))
    process.stderr.write(`Bridge listening on mqtts://${config.listen.host}:${port} (${workers} workers)\n`)
    return
  }
  // signals that arrive while starting are held until the bridge is up, then stop it; a start or a stop that hangs
  // past the grace period and a margin is a failure: exit non-zero, never stay half-up
  const requested = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      setTimeout(() => process.exit(1), config.shutdown.gracePeriodMs + STOP_MARGIN_MS).unref()
      resolve()
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  const logger = createLogger(config.log.level)
  // a worker's log lines name its slot, so that an operator (and a test) can tell the processes apart; a start
  // that fails has closed what it opened and rejects: the CLI then exits non-zero at once
  const worker = { worker: Number(process.env[WORKER_SLOT_ENV]), pid: process.pid }
  const bridge = await startBridge(config, cluster.isWorker ? logger.child(worker) : logger)
  void requested.then(() =>
    bridge.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    ),
  )
  if (cluster.isWorker) {
    process.send?.({ bridgeListening: bridge.address.port } satisfies WorkerMessage)
    return
  }
  if (bridge.createdDevPki) process.stderr.write(`Created a development PKI in ${devPkiDir(config)}\n`)
  else if (config.usesDevPki) process.stderr.write(`Using the development PKI in ${devPkiDir(config)}\n`)
  if (config.usesDevPki) process.stderr.write(`WARNING: ${DEV_PKI_WARNING}\n`)
  process.stderr.write(`Bridge listening on mqtts://${config.listen.host}:${bridge.address.port}\n`)
}
