import type { Logger } from 'pino'
import type { ConfiguredFiles } from '../config/files.js'
import { ConfigError } from '../config/load.js'
import { type IssuingCaMaterial, loadCa } from '../pki/signer.js'
import type { CertManagerIssuerOptions } from './cert-manager/cert-manager-issuer.js'
import type { KubeObserver } from './cert-manager/kube-api.js'
import type { Issuer } from './issuer.js'
import { LocalCaIssuer } from './local-ca/local-ca-issuer.js'
import type { CertificateTemplate } from './template.js'

/** IssuerChoice is the configured issuer: cert-manager with its options, or the embedded CA with its template. */
export type IssuerChoice =
  | {
      readonly type: 'cert-manager'
      readonly certManager: Omit<CertManagerIssuerOptions, 'logger' | 'observer'>
    }
  | { readonly type: 'local-ca'; readonly template: CertificateTemplate }

/**
 * createIssuer makes the configured issuer. The embedded CA reads `currentCa()` on every issuance, so CA files
 * re-read by the TLS reloader take effect at once; until the reloader exists it uses the files loaded here.
 */
export async function createIssuer(
  choice: IssuerChoice,
  files: ConfiguredFiles,
  logger: Logger,
  currentCa: () => IssuingCaMaterial | undefined = () => undefined,
  kubeObserver?: KubeObserver,
): Promise<Issuer> {
  if (choice.type === 'cert-manager') {
    // loaded only when configured: the Kubernetes client is large, and the embedded CA does not need it
    const { CertManagerIssuer } = await import('./cert-manager/cert-manager-issuer.js')
    return new CertManagerIssuer({ ...choice.certManager, logger, observer: kubeObserver })
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
      template: choice.template,
      logger,
    })
  } catch (err) {
    throw new ConfigError([`issuer.localCa: ${(err as Error).message}`])
  }
}
