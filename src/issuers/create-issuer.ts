import type { Logger } from 'pino'
import type { ConfiguredFiles } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import { type IssuingCaMaterial, loadCa } from '../pki/signer.js'
import type { KubeObserver } from './cert-manager/kube-api.js'
import type { Issuer } from './issuer.js'
import { LocalCaIssuer } from './local-ca/local-ca-issuer.js'

/**
 * createIssuer makes the configured issuer. The embedded CA reads `currentCa()` on every issuance, so CA files
 * re-read by the TLS reloader take effect at once; until the reloader exists it uses the files loaded here.
 */
export async function createIssuer(
  config: Config,
  files: ConfiguredFiles,
  logger: Logger,
  currentCa: () => IssuingCaMaterial | undefined = () => undefined,
  kubeObserver?: KubeObserver,
): Promise<Issuer> {
  if (config.issuer.type === 'cert-manager') {
    // loaded only when configured: the Kubernetes client is large, and the embedded CA does not need it
    const { CertManagerIssuer } = await import('./cert-manager/cert-manager-issuer.js')
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
      observer: kubeObserver,
    })
  }
  try {
    const ca = loadCa(files.issuerCertPem, files.issuerKeyPem)
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
