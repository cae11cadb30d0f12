import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { BootstrapBroker, listen } from './broker/broker.js'
import { redisBackend } from './broker/redis-backend.js'
import { TlsReloader, tlsFilesOf } from './broker/tls-reloader.js'
import { checkTlsMaterial } from './broker/tls-startup.js'
import { workerSuffix } from './cluster/worker-slot.js'
import { CleanupStack } from './common/cleanup-stack.js'
import { LogBudget } from './common/log-budget.js'
import { readConfiguredFiles } from './config/files.js'
import type { Config } from './config/load.js'
import { createHealthServer, healthPort } from './health.js'
import { createIssuer } from './issuers/create-issuer.js'
import { createLogger } from './logger.js'
import { countDevices } from './observability/device-counts-wiring.js'
import { createMetrics, metricsExposition, type RELOADED_FILES } from './observability/metrics.js'
import { brokerMetrics, kubeMetrics, registrationMetrics } from './observability/observers.js'
import { expiryConditions, Readiness, storeConditions } from './observability/readiness.js'
import { createDevPki, devPkiExists } from './pki/dev-pki.js'
import { loadCa } from './pki/signer.js'
import { createTopics } from './protocol/topics.js'
import { AuditTrail, writerId } from './registration/audit-trail.js'
import { Deliveries } from './registration/deliveries.js'
import { loadGatewayPolicySource, wireGateways } from './registration/gateway-wiring.js'
import { wireLifecycle } from './registration/lifecycle-wiring.js'
import { RegistrationService } from './registration/service.js'
import { openConfiguredRegistry } from './registry/open.js'
import { openSharedState } from './state/open.js'

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
  let createdDevPki = false
  if (config.usesDevPki && !(await devPkiExists(devPkiDir(config)))) {
    await createDevPki(devPkiDir(config))
    createdDevPki = true
    logger.info({ dir: devPkiDir(config) }, 'created a development PKI')
  }
  if (config.usesDevPki) logger.warn({ dir: devPkiDir(config) }, DEV_PKI_WARNING)
  const files = readConfiguredFiles(config)
  checkTlsMaterial(config, files) // what a reload would refuse does not start either (exit 2)
  // replicas share the registry in PostgreSQL; one process keeps it in SQLite
  const registry = await openConfiguredRegistry(config)
  cleanup.defer(() => registry.close())
  const lifecycle = wireLifecycle(config, {
    registry,
    issuingCa: () => (tls as TlsReloader | undefined)?.issuingCa?.ca,
    logger,
  })
  cleanup.defer(() => lifecycle.close())
  // made after the issuer, which reads the current CA through it (undefined until then: the loaded files)
  let tls: TlsReloader
  const deviceCounts = config.health.metrics
    ? countDevices(registry, config.health.deviceCountsSeconds * 1000, logger)
    : undefined
  cleanup.defer(async () => deviceCounts?.close())
  const metrics = config.health.metrics
    ? createMetrics({
        replyCacheEntries: () => service.cachedReplies,
        ready: () => readiness.isReady(),
        certificates: () => ({ listener: tls.listenerNotAfter, issuing_ca: tls.issuingCa?.ca.certificate }),
        devices: deviceCounts,
      })
    : undefined
  const issuer = await createIssuer(
    config,
    files,
    logger,
    () => (tls as TlsReloader | undefined)?.issuingCa,
    metrics && kubeMetrics(metrics),
  )
  cleanup.defer(() => issuer.close())
  tls = new TlsReloader(
    tlsFilesOf(config),
    {
      listener: {
        certPem: files.serverCertPem,
        keyPem: files.serverKeyPem,
        clientCaPem: files.clientCaPem,
        operationalCaPem: lifecycle.operationalCaPem,
      },
      productionCaPem: files.productionCaPem,
      // createIssuer has checked the CA files: they load
      issuingCa:
        config.issuer.type === 'local-ca'
          ? { ca: loadCa(files.issuerCertPem, files.issuerKeyPem), chainPem: files.issuerChainPem }
          : undefined,
    },
    {
      logger,
      applyListener: (options) => broker.setSecureContext(options),
      onResult: (material, ok) => {
        metrics?.tlsReloads.inc({ material, result: ok ? 'ok' : 'refused' })
        readiness.check() // an expired CA replaced: say so now
      },
    },
  )
  cleanup.defer(() => tls.close())
  const { registration: r, limits } = config
  // the registry is the record of every issuance; the audit log follows it, completed at start from what this
  // state directory (and worker slot: a replacement finishes what it left, never a live worker's lines)
  // committed that a crash kept out of it
  const writer = `${await writerId(join(config.stateDir, 'writer-id'))}${workerSuffix()}`
  const audit = new AuditTrail(config.auditLog, writer, logger)
  cleanup.defer(() => audit.close())
  await audit.complete(registry, r.replyCacheSeconds * 1000)
  // shared state for workers and replicas (Redis), else this process's memory; unreachable Redis stops the start
  const state = await openSharedState(config)
  cleanup.defer(() => state.close())
  const redisUrl = config.state.redis.url
  const redisErrors = new LogBudget({ burst: 5, perMinute: 5 })
  const backend =
    redisUrl === undefined
      ? undefined
      : redisBackend(redisUrl, r.replyCacheSeconds * 1000, (err) => {
          const suppressed = redisErrors.take('redis')
          if (suppressed !== undefined)
            logger.warn({ err: err.message, suppressed }, 'Redis (MQTT sessions) unavailable')
        })
  cleanup.defer(() => backend?.close())
  const gatewayPolicy = loadGatewayPolicySource(config, logger)
  cleanup.defer(() => gatewayPolicy.close())
  const broker: BootstrapBroker = new BootstrapBroker({
    host: config.listen.host,
    port: config.listen.port,
    tls: {
      certPem: files.serverCertPem,
      keyPem: files.serverKeyPem,
      clientCaPem: files.clientCaPem,
      operationalCaPem: lifecycle.operationalCaPem,
      maxConnections: limits.maxConnections,
      maxIdleMs: limits.maxIdleSeconds * 1000,
    },
    topics: createTopics(config.topics.request, config.topics.replyPrefix),
    identitySource: config.identity,
    connectTimeoutMs: limits.connectTimeoutMs,
    maxPacketBytes: limits.maxPacketBytes,
    maxClientIdLength: limits.maxClientIdLength,
    maxConnectionsPerIdentity: limits.maxConnectionsPerIdentity,
    maxQueuedRepliesPerIdentity: limits.maxQueuedRepliesPerIdentity,
    maxSessionsPerIdentity: limits.maxSessionsPerIdentity,
    sessionExpiryMs: limits.sessionExpirySeconds * 1000,
    maxQueuedReplies: r.replyCacheMaxEntries,
    queuedReplyTtlMs: r.replyCacheSeconds * 1000,
    logger,
    onRequest: (identity, payload, connection) => {
      if (!gateways.route(identity.id, payload, identity.credential, connection))
        deliveries.track(identity.id, service.handle(identity.id, payload, identity.credential, connection))
    },
    operationalCas: () => tls.operationalCas,
    denied: (identity) => lifecycle.denied(identity),
    ...(metrics ? { observer: brokerMetrics(metrics) } : {}),
    backend,
  })
  // the service answers; the wiring delivers: the broker never needs the service, nor the service the broker
  const deliveries = new Deliveries(
    (identity, reply, queue) => broker.publish(identity, reply, queue),
    logger,
  )
  const service = new RegistrationService(
    {
      issuer,
      registry,
      audit,
      notify: (identity, notice) => void broker.publish(identity, notice, false).catch(() => {}),
      logger,
      state,
      ...(metrics ? { observer: registrationMetrics(metrics, issuer.name) } : {}),
    },
    {
      policy: {
        allowedKeyAlgorithms: r.allowedKeyAlgorithms,
        defaultKeyAlgorithm: r.defaultKeyAlgorithm,
        template: config.certificate,
      },
      requestMaxBytes: limits.maxRequestBytes,
      pendingAfterMs: r.pendingAfterMs,
      issuanceTimeoutMs: r.timeoutMs,
      rateLimit: r.rateLimit,
      replyCache: { ttlSeconds: r.replyCacheSeconds, maxEntries: r.replyCacheMaxEntries },
      // read on every reply, so that a re-read production CA file takes effect at once
      get extraTrustPem() {
        return tls.productionCaPem
      },
      productionUrl: config.production.url,
      leaseMs: config.state.leaseMs,
      // a generated private key is never queued in shared (Redis) sessions: it reaches the device in transit only
      queueGeneratedKeys: backend === undefined,
      lifecycle: lifecycle.options,
    },
  )
  const gateways = wireGateways(config, {
    service,
    registry,
    policy: gatewayPolicy,
    // a batch's replies go to a connected gateway only, never kept for an offline session: a kept `complete`
    // would claim devices whose replies were not kept (those with keys, those past the per-identity bound); a
    // gateway that lost its connection retries the batch and gets the same answers
    publish: (identity, payload) => broker.publishPayload(identity, payload, false),
    logger,
    ...(metrics ? { observer: registrationMetrics(metrics, issuer.name) } : {}),
  })
  const health = config.health.enabled
    ? createHealthServer(() => readiness.check(), metrics && metricsExposition(metrics), {
        crlFile: lifecycle.crl && config.lifecycle.crl.file,
      })
    : undefined
  cleanup.defer(() => broker.stop())
  cleanup.defer(
    () => new Promise<void>((resolve) => (health?.listening ? health.close(() => resolve()) : resolve())),
  )
  const address = await broker.start()
  if (health) await listen(health, config.health.port, config.health.host, 'health.port')
  // made once listening, so that its first word is not a "not ready" it is about to take back
  const readiness = new Readiness(
    [
      { reason: 'the MQTT listener is not accepting connections', ok: () => broker.listening },
      { reason: `the issuer (${issuer.name}) cannot issue`, ok: () => issuer.isReady() },
      ...expiryConditions({
        listenerCertificate: () => tls.listenerCertificate,
        factoryCas: () => tls.factoryCas,
        issuingCa: () => tls.issuingCa?.ca.certificate,
      }),
      ...storeConditions(state, registry),
    ],
    logger,
  )
  tls.start()
  deviceCounts?.start()
  const reloaded = (file: (typeof RELOADED_FILES)[number]) => (ok: boolean) =>
    metrics?.fileReloads.inc({ file, result: ok ? 'ok' : 'refused' })
  gatewayPolicy.watch({ onChange: config.gateways.watch, onResult: reloaded('gateway_policy') })
  lifecycle.denyList.watch({ onChange: config.lifecycle.watchDenyList, onResult: reloaded('deny_list') })
  await lifecycle.crl?.publish()
  logger.info({ host: address.address, port: address.port, issuer: issuer.name }, 'bridge listening')
  const issuerStarted = issuer
    .start()
    .catch((err: unknown) => logger.error({ err }, 'issuer failed to start'))
  void issuerStarted.then(() => readiness.check()) // say "ready" as soon as the issuer is
  return {
    address,
    healthPort: health ? healthPort(health) : undefined,
    config,
    createdDevPki,
    issuerStarted: issuerStarted.then(() => undefined),
    async stop() {
      // not ready at once; stop accepting; answer what is in flight within the grace period; close the rest
      readiness.shuttingDown()
      tls.close()
      await broker.stopAccepting()
      await Promise.all([service.close(config.shutdown.gracePeriodMs), gateways.service.close()])
      await deliveries.settled()
      await broker.stop()
      readiness.check() // logs the listener closing
      readiness.close()
      await cleanup.unwind() // the health server, then every store, newest first
      logger.info('bridge stopped')
    },
  }
}
