import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { BootstrapBroker } from './broker/broker.js'
import { type ConfiguredFiles, readConfiguredFiles } from './config/files.js'
import { type Config, ConfigError } from './config/load.js'
import { healthPort, startHealthServer } from './health.js'
import type { Issuer } from './issuers/issuer.js'
import { LocalCaIssuer } from './issuers/local-ca/local-ca-issuer.js'
import { createLogger } from './logger.js'
import { createDevPki, devPkiExists } from './pki/dev-pki.js'
import { loadCa } from './pki/signer.js'
import { createTopics } from './protocol/topics.js'
import { AuditLog } from './registration/audit-log.js'
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

async function createIssuer(config: Config, files: ConfiguredFiles, logger: Logger): Promise<Issuer> {
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
      watch: {
        initialMs: cm.watchBackoffInitialMs,
        maxMs: cm.watchBackoffMaxMs,
        resetAfterMs: cm.watchBackoffResetSeconds * 1000,
        timeoutSeconds: cm.watchTimeoutSeconds,
      },
      resyncMs: cm.resyncSeconds * 1000,
      leftoverAgeMs: config.registration.timeoutMs,
      template: config.certificate,
      logger,
    })
  }
  try {
    const ca = loadCa(files.issuerCertPem, files.issuerKeyPem)
    return new LocalCaIssuer({ ca, chainPem: files.issuerChainPem, template: config.certificate })
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
  const issuer = await createIssuer(config, files, logger)
  const audit = new AuditLog(config.auditLog)
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
    identitySource: config.identity.source,
    connectTimeoutMs: config.limits.connectTimeoutMs,
    maxPacketBytes: config.limits.maxPacketBytes,
    maxClientIdLength: config.limits.maxClientIdLength,
    logger,
    onRequest: (identity, payload) => service.handle(identity.id, payload),
  })
  const { registration: r } = config
  const service = new RegistrationService(
    { issuer, audit, publisher: broker, logger },
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
      extraTrustPem: files.productionCaPem,
      productionUrl: config.production.url,
    },
  )
  const address = await broker.start()
  logger.info({ host: address.address, port: address.port, issuer: issuer.name }, 'bridge listening')
  const issuerStarted = issuer
    .start()
    .catch((err: unknown) => logger.error({ err }, 'issuer failed to start'))
  const health = config.health.enabled
    ? await startHealthServer(config.health.host, config.health.port, () => issuer.isReady())
    : undefined
  return {
    address,
    healthPort: health ? healthPort(health) : undefined,
    config,
    createdDevPki,
    issuerStarted: issuerStarted.then(() => undefined),
    async stop() {
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()))
      await service.close()
      await broker.stop()
      await audit.close()
      await issuer.close()
      logger.info('bridge stopped')
    },
  }
}
