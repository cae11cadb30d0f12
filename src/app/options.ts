import type { TlsFiles } from '../broker/tls-reloader.js'
import { operationalCaFileOf } from '../config/files.js'
import type { Config } from '../config/load.js'
import type { IssuerChoice } from '../issuers/create-issuer.js'

// Config, read once, mapped to the options of the rooms that would otherwise read it whole.

/** tlsFilesOf names the files a configuration reads TLS material from. */
export const tlsFilesOf = (config: Config): TlsFiles => ({
  ...config.tls,
  productionCaFile: config.production.caFile,
  issuingCa: config.issuer.type === 'local-ca' ? config.issuer.localCa : undefined,
  operationalCaFile: operationalCaFileOf(config),
})

/** issuerOf is the configured issuer: the embedded CA, or cert-manager with its settings. */
export function issuerOf(config: Config): IssuerChoice {
  if (config.issuer.type === 'local-ca') return { type: 'local-ca', template: config.certificate }
  const cm = config.issuer.certManager
  return {
    type: 'cert-manager',
    certManager: {
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
    },
  }
}
