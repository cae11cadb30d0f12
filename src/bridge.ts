import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { BootstrapBroker } from './broker/broker.js'
import type { IssuingCaMaterial } from './broker/tls-material.js'
import { TlsReloader, tlsFilesOf } from './broker/tls-reloader.js'
import { type ConfiguredFiles, readConfiguredFiles } from './config/files.js'
import { type Config, ConfigError } from './config/load.js'
import { healthPort, startHealthServer } from './health.js'
import type { KubeObserver } from './issuers/cert-manager/kube-api.js'
import type { Issuer } from './issuers/issuer.js'
import { LocalCaIssuer } from './issuers/local-ca/local-ca-issuer.js'
import { createLogger } from './logger.js'
import { createMetrics, metricsExposition } from './observability/metrics.js'
import { brokerMetrics, kubeMetrics, registrationMetrics } from './observability/observers.js'
import { expiryConditions, Readiness } from './observability/readiness.js'
import { createDevPki, devPkiExists } from './pki/dev-pki.js'
import { loadCa } from './pki/signer.js'
import { createTopics } from './protocol/topics.js'
import { AuditLog } from './registration/audit-log.js'
import { loadGatewayPolicySource, openRegistry, wireGateways } from './registration/gateway-wiring.js'
import { RegistrationService } from './registration/service.js'

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

async function createIssuer(
  config: Config,
  files: ConfiguredFiles,
  logger: Logger,
  currentCa: () => IssuingCaMaterial | undefined = () => undefined,
  kubeObserver?: KubeObserver,
): Promise<Issuer> {
  if (config.issuer.type === 'cert-manager') {
    // loaded only when configured: the Kubernetes client is large, and the embedded CA does not need it
    const { CertManagerIssuer } = await import('./issuers/cert-manager/cert-manager-issuer.js')
    const cm = config.issuer.certManager
    return new CertManagerIssuer({
      namespace: cm.namespace,
      issuerRef: cm.issuerRef,
      kubeconfig: cm.kubeconfig,
      secretRetention: cm.secretRetention,
      requestRetention: cm.requestRetention,
      throttle: {
        requestsPerSecond: cm.apiRequestsPerSecond,
        burst: cm.apiBurst,
        maxConcurrent: cm.apiMaxConcurrent,
      },
      template: config.certificate,
      logger,
      observer: kubeObserver,
    })
  }
  try {
    const ca = loadCa(files.issuerCertPem, files.issuerKeyPem)
    // read on every issuance, so that the CA files re-read by the TLS reloader take effect at once
    return new LocalCaIssuer({
      get ca() {
        return currentCa()?.ca ?? ca
      },
      get chainPem() {
        return currentCa()?.chainPem ?? files.issuerChainPem
      },
      template: config.certificate,
      logger,
    })
  } catch (err) {
    throw new ConfigError([`issuer.localCa: ${(err as Error).message}`])
  }
}

/** devPkiDir is where the development PKI lives for a configuration. */
export const devPkiDir = (config: Config): string => join(config.stateDir, 'pki')

/** startBridge wires configuration into logger, issuer, service and broker, and starts listening. */
export async function startBridge(
  config: Config,
  logger: Logger = createLogger(config.log.level),
): Promise<Bridge> {
  let createdDevPki = false
  if (config.usesDevPki && !(await devPkiExists(devPkiDir(config)))) {
    await createDevPki(devPkiDir(config))
    createdDevPki = true
    logger.info({ dir: devPkiDir(config) }, 'created a development PKI')
  }
  const files = readConfiguredFiles(config)
  // made after the issuer, which reads the current CA through it (undefined until then: the loaded files)
  let tls: TlsReloader
  const metrics = config.health.metrics
    ? createMetrics({
        replyCacheEntries: () => service.cachedReplies,
        ready: () => readiness.isReady(),
        certificates: () => ({ listener: tls.listenerNotAfter, issuing_ca: tls.issuingCa?.ca.certificate }),
      })
    : undefined
  const issuer = await createIssuer(
    config,
    files,
    logger,
    () => (tls as TlsReloader | undefined)?.issuingCa,
    metrics && kubeMetrics(metrics),
  )
  tls = new TlsReloader(
    tlsFilesOf(config),
    {
      listener: { certPem: files.serverCertPem, keyPem: files.serverKeyPem, clientCaPem: files.clientCaPem },
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
  const audit = new AuditLog(config.auditLog)
  const registry = openRegistry(config)
  const gatewayPolicy = loadGatewayPolicySource(config, logger)
  const broker: BootstrapBroker = new BootstrapBroker({
    host: config.listen.host,
    port: config.listen.port,
    tls: {
      certPem: files.serverCertPem,
      keyPem: files.serverKeyPem,
      clientCaPem: files.clientCaPem,
      maxConnections: config.limits.maxConnections,
    },
    topics: createTopics(config.topics.request, config.topics.replyPrefix),
    identitySource: config.identity,
    connectTimeoutMs: config.limits.connectTimeoutMs,
    maxPacketBytes: config.limits.maxPacketBytes,
    maxClientIdLength: config.limits.maxClientIdLength,
    logger,
    onRequest: (identity, payload) =>
      gateways.route(identity.id, payload) || service.handle(identity.id, payload),
    ...(metrics ? { observer: brokerMetrics(metrics) } : {}),
  })
  const { registration: r } = config
  const service = new RegistrationService(
    {
      issuer,
      audit,
      publisher: broker,
      logger,
      registry,
      ...(metrics ? { observer: registrationMetrics(metrics, issuer.name) } : {}),
    },
    {
      policy: {
        allowedKeyAlgorithms: r.allowedKeyAlgorithms,
        defaultKeyAlgorithm: r.defaultKeyAlgorithm,
        template: config.certificate,
      },
      requestMaxBytes: config.limits.maxRequestBytes,
      pendingAfterMs: r.pendingAfterMs,
      issuanceTimeoutMs: r.timeoutMs,
      rateLimit: r.rateLimit,
      replyCache: { ttlSeconds: r.replyCacheSeconds, maxEntries: r.replyCacheMaxEntries },
      // read on every reply, so that a re-read production CA file takes effect at once
      get extraTrustPem() {
        return tls.productionCaPem
      },
      productionUrl: config.production.url,
    },
  )
  const gateways = wireGateways(config, {
    service,
    registry,
    policy: gatewayPolicy,
    publish: (identity, payload) => broker.publishPayload(identity, payload),
    logger,
  })
  const address = await broker.start()
  const readiness = new Readiness(
    [
      { reason: 'the MQTT listener is not accepting connections', ok: () => broker.listening },
      { reason: `the issuer (${issuer.name}) cannot issue`, ok: () => issuer.isReady() },
      ...expiryConditions(
        () => tls.listenerNotAfter,
        () => tls.issuingCa?.ca.certificate,
      ),
    ],
    logger,
  )
  tls.start()
  gatewayPolicy.watch(config.gateways.watch)
  logger.info({ host: address.address, port: address.port, issuer: issuer.name }, 'bridge listening')
  const issuerStarted = issuer
    .start()
    .catch((err: unknown) => logger.error({ err }, 'issuer failed to start'))
  void issuerStarted.then(() => readiness.check()) // say "ready" as soon as the issuer is
  const health = config.health.enabled
    ? await startHealthServer(
        config.health.host,
        config.health.port,
        () => readiness.check(),
        metrics && metricsExposition(metrics),
      )
    : undefined
  return {
    address,
    healthPort: health ? healthPort(health) : undefined,
    config,
    createdDevPki,
    issuerStarted: issuerStarted.then(() => undefined),
    async stop() {
      readiness.shuttingDown()
      tls.close()
      await service.close()
      await gateways.service.close()
      gatewayPolicy.close()
      await broker.stop()
      readiness.check() // logs the listener closing
      readiness.close()
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()))
      await audit.close()
      await registry.close()
      await issuer.close()
      logger.info('bridge stopped')
    },
  }
}
