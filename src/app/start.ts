import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { listen } from '../broker/broker.js'
import { checkTlsMaterial } from '../broker/tls-startup.js'
import { workerSuffix } from '../cluster/worker-slot.js'
import { CleanupStack } from '../common/cleanup-stack.js'
import { readConfiguredFiles } from '../config/files.js'
import type { Config } from '../config/load.js'
import { healthPort } from '../health.js'
import { createIssuer } from '../issuers/create-issuer.js'
import { createLogger } from '../logger.js'
import { brokerMetrics, hookMetrics, kubeMetrics, registrationMetrics } from '../observability/observers.js'
import { createDevPki, devPkiExists } from '../pki/dev-pki.js'
import { AuditTrail, writerId } from '../registration/audit-trail.js'
import { openConfiguredRegistry } from '../registry/open.js'
import { openSharedState } from '../state/open.js'
import { issuerOf, tlsFilesOf } from './options.js'
import { wireBroker, wireTls } from './wire-broker.js'
import { wireHook } from './wire-hook.js'
import { wireLifecycle } from './wire-lifecycle.js'
import { readinessOf, wireHealth, wireMetrics } from './wire-observability.js'
import { wireRegistration } from './wire-registration.js'

/** Bridge is a running registration bridge. */
export interface Bridge {
  readonly address: AddressInfo
  /** The port of the health server, when it is enabled. */
  readonly healthPort: number | undefined
  /** Resolves when the issuer has started (for cert-manager: the informers' first sync). */
  readonly issuerStarted: Promise<void>
  readonly config: Config
  /** True when this start created the development PKI. */
  readonly createdDevPki: boolean
  stop(): Promise<void>
}

/** DEV_PKI_WARNING is logged (warn) and printed by `serve` when the bridge runs on the development PKI. */
export const DEV_PKI_WARNING =
  'running on the development PKI: anyone with this directory can mint factory certificates; not for production'

/** devPkiDir is where the development PKI lives for a configuration. */
export const devPkiDir = (config: Config): string => join(config.stateDir, 'pki')

/**
 * startBridge wires configuration into logger, issuer, service and broker, and starts listening. A start that
 * fails closes everything it had opened (newest first) before it rejects: nothing is left open or half-up.
 */
export async function startBridge(
  config: Config,
  logger: Logger = createLogger(config.log.level),
): Promise<Bridge> {
  const cleanup = new CleanupStack()
  try {
    return await wireBridge(config, logger, cleanup)
  } catch (err) {
    await cleanup.unwind().catch((closing: unknown) => {
      logger.warn({ err: (closing as Error).message }, 'closing after a failed start failed')
    })
    throw err
  }
}

/** wireBridge does startBridge's work, pushing on `cleanup` how to close each thing as soon as it is opened. */
async function wireBridge(config: Config, logger: Logger, cleanup: CleanupStack): Promise<Bridge> {
  const dir = devPkiDir(config)
  const createdDevPki = config.usesDevPki && !(await devPkiExists(dir))
  if (createdDevPki) {
    await createDevPki(dir)
    logger.info({ dir }, 'created a development PKI')
  }
  if (config.usesDevPki) logger.warn({ dir }, DEV_PKI_WARNING)
  const files = readConfiguredFiles(config)
  const tlsFiles = tlsFilesOf(config)
  checkTlsMaterial(tlsFiles, files) // what a reload would refuse does not start either (exit 2)
  // replicas share the registry in PostgreSQL; one process keeps it in SQLite
  const registry = await openConfiguredRegistry(config)
  cleanup.defer(() => registry.close())
  // the CRL publisher and the issuer read the current CA through the TLS reloader (tls, below)
  const lifecycle = wireLifecycle(config, { registry, issuingCa: () => tls.issuingCa?.ca, logger })
  cleanup.defer(() => lifecycle.close())
  const sources = {
    replyCacheEntries: () => registration.cachedReplies,
    ready: () => readiness.isReady(),
    certificates: () => ({ listener: tls.listenerNotAfter, issuing_ca: tls.issuingCa?.ca.certificate }),
  }
  const counts = wireMetrics(config, { registry, logger, cleanup }, sources)
  const { metrics, reloaded } = counts
  const tls = wireTls(tlsFiles, files, cleanup, {
    logger,
    applyListener: (options) => broker.setSecureContext(options),
    onResult: (material, ok) => {
      metrics?.tlsReloads.inc({ material, result: ok ? 'ok' : 'refused' })
      readiness.check() // an expired CA replaced: say so now
    },
  })
  const kube = metrics && kubeMetrics(metrics)
  const issuer = await createIssuer(issuerOf(config), files, logger, () => tls.issuingCa, kube)
  cleanup.defer(() => issuer.close())
  // the registry is the record of every issuance; the audit log follows it, completed at start from what this
  // state directory (and worker slot: a replacement finishes what it left, never a live worker's lines)
  // committed that a crash kept out of it
  const writer = `${await writerId(join(config.stateDir, 'writer-id'))}${workerSuffix()}`
  const audit = new AuditTrail(config.auditLog, writer, logger)
  cleanup.defer(() => audit.close())
  await audit.complete(registry, config.registration.replyCacheSeconds * 1000)
  // shared state for workers and replicas (Redis), else this process's memory; unreachable Redis stops the start
  const state = await openSharedState(config)
  cleanup.defer(() => state.close())
  const { broker, sharedSessions } = wireBroker(config, files, cleanup, {
    logger,
    onRequest: (identity, payload, connection, format) =>
      registration.handle(identity, payload, connection, format),
    // everything under $aws stays refused unless aws.enabled
    onAwsRequest: config.aws.enabled
      ? (identity, topic, payload, reply) => registration.handleAws(identity, topic, payload, reply)
      : undefined,
    operationalCas: () => tls.operationalCas,
    denied: (identity) => lifecycle.denied(identity),
    ...(metrics ? { observer: brokerMetrics(metrics) } : {}),
  })
  const observer = metrics && registrationMetrics(metrics, issuer.name)
  const hookObserver = metrics && hookMetrics(metrics)
  const hook = wireHook(config, { logger, observer: hookObserver, reloaded }, cleanup)
  const parts = {
    issuer,
    registry,
    audit,
    state,
    broker,
    sharedSessions,
    tls,
    logger,
    observer,
    hook: hook.hook,
  }
  // the embedded CA's CRL write sweeps expired tokens first; with cert-manager (no CRL) the sweep runs alone
  const lifetimeMs = config.aws.tokenLifetimeSeconds * 1000
  const pendingChanged = async (): Promise<void> => {
    if (lifecycle.crl) return lifecycle.crl.publish()
    await registry.expirePending(new Date(), lifetimeMs)
  }
  const registration = wireRegistration(
    config,
    { ...parts, lifecycle: lifecycle.options, pendingChanged },
    cleanup,
  )
  const crlFile = lifecycle.crl && config.lifecycle.crl.file
  const health = wireHealth(config, { ready: () => readiness.check(), metrics, crlFile }, cleanup)
  const address = await broker.start()
  if (health) await listen(health, config.health.port, config.health.host, 'health.port')
  const readiness = readinessOf({ broker, issuer, tls, state, registry, hook: hook.readiness }, logger)
  tls.start()
  counts.start()
  registration.gatewayPolicy.watch({ onChange: config.gateways.watch, onResult: reloaded('gateway_policy') })
  registration.templates.watch({ onChange: config.aws.watchTemplates, onResult: reloaded('aws_templates') })
  hook.watch()
  lifecycle.denyList.watch({ onChange: config.lifecycle.watchDenyList, onResult: reloaded('deny_list') })
  await lifecycle.crl?.publish()
  const healthAt = health && healthPort(health)
  logger.info(
    { host: address.address, port: address.port, healthPort: healthAt, issuer: issuer.name },
    'bridge listening',
  )
  const issuerStarted = issuer
    .start()
    .catch((err: unknown) => logger.error({ err }, 'issuer failed to start'))
  void issuerStarted.then(() => readiness.check()) // say "ready" as soon as the issuer is
  return {
    address,
    healthPort: healthAt,
    config,
    createdDevPki,
    issuerStarted: issuerStarted.then(() => undefined),
    async stop() {
      // not ready at once; stop accepting; answer what is in flight within the grace period; close the rest
      readiness.shuttingDown()
      tls.close()
      await broker.stopAccepting()
      await registration.close()
      await broker.stop()
      readiness.check() // logs the listener closing
      readiness.close()
      await cleanup.unwind() // the health server, then every store, newest first
      logger.info('bridge stopped')
    },
  }
}
