import { BootstrapBroker, type BootstrapBrokerOptions } from '../broker/broker.js'
import { redisBackend } from '../broker/redis-backend.js'
import type { ListenerMaterial } from '../broker/tls-material.js'
import { type TlsFiles, TlsReloader, type TlsReloaderDeps } from '../broker/tls-reloader.js'
import type { CleanupStack } from '../common/cleanup-stack.js'
import { LogBudget } from '../common/log-budget.js'
import type { ConfiguredFiles } from '../config/files.js'
import type { Config } from '../config/load.js'
import { loadCa } from '../pki/signer.js'
import { createTopics } from '../protocol/topics.js'

/** listenerOf is the listener's material among the files read at start-up. */
const listenerOf = (f: ConfiguredFiles): ListenerMaterial => ({
  certPem: f.serverCertPem,
  keyPem: f.serverKeyPem,
  clientCaPem: f.clientCaPem,
  operationalCaPem: f.operationalCaPem,
})

/** wireTls makes the TLS reloader, starting from the files read at start-up (checkTlsMaterial: they load). */
export function wireTls(
  tlsFiles: TlsFiles,
  files: ConfiguredFiles,
  cleanup: CleanupStack,
  deps: TlsReloaderDeps,
): TlsReloader {
  const issuingCa = tlsFiles.issuingCa && {
    ca: loadCa(files.issuerCertPem, files.issuerKeyPem),
    chainPem: files.issuerChainPem,
  }
  const tls = new TlsReloader(
    tlsFiles,
    { listener: listenerOf(files), productionCaPem: files.productionCaPem, issuingCa },
    deps,
  )
  cleanup.defer(() => tls.close())
  return tls
}

/**
 * wireBroker makes the MQTT broker on the listener, with its sessions in Redis when workers or replicas share
 * state.redis.url (else bounded, in memory). `sharedSessions` says which.
 */
export function wireBroker(
  config: Config,
  files: ConfiguredFiles,
  cleanup: CleanupStack,
  deps: Pick<
    BootstrapBrokerOptions,
    'logger' | 'onRequest' | 'onAwsRequest' | 'operationalCas' | 'denied' | 'observer'
  >,
): { broker: BootstrapBroker; sharedSessions: boolean } {
  const { registration: r, limits, state } = config
  const topics = createTopics(config.topics.request, config.topics.replyPrefix)
  const redisErrors = new LogBudget({ burst: 5, perMinute: 5 })
  const backend =
    state.redis.url === undefined
      ? undefined
      : redisBackend(state.redis.url, r.replyCacheSeconds * 1000, topics.requestTopics, (err) => {
          const suppressed = redisErrors.take('redis')
          if (suppressed !== undefined)
            deps.logger.warn({ err: err.message, suppressed }, 'Redis (MQTT sessions) unavailable')
        })
  cleanup.defer(() => backend?.close())
  const broker = new BootstrapBroker({
    host: config.listen.host,
    port: config.listen.port,
    tls: {
      ...listenerOf(files),
      maxConnections: limits.maxConnections,
      maxIdleMs: limits.maxIdleSeconds * 1000,
    },
    topics,
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
    ...deps,
    backend,
  })
  cleanup.defer(() => broker.stop())
  return { broker, sharedSessions: backend !== undefined }
}
