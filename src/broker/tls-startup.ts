import type { ConfiguredFiles } from '../config/files.js'
import { ConfigError } from '../config/load.js'
import { checkCaBundle, checkListenerPair, loadIssuingCa, parseCaBundle } from './tls-material.js'
import type { TlsFiles } from './tls-reloader.js'

/**
 * checkTlsMaterial refuses at start-up the TLS material that a reload would refuse (tls-material.ts): the
 * listener pair, the factory CA bundle, the production CA bundle, the embedded CA and the operational CA bundle,
 * every problem at once, as a ConfigError (exit 2). Files that cannot be read are reported where they are read
 * (readConfiguredFiles).
 */
export function checkTlsMaterial(tls: TlsFiles, files: ConfiguredFiles, now = new Date()): void {
  const problems: string[] = []
  const check = (run: () => unknown): void => {
    try {
      run()
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  const pair = { certPem: files.serverCertPem, keyPem: files.serverKeyPem, clientCaPem: '' }
  check(() => checkListenerPair(pair, now))
  check(() => checkCaBundle(files.clientCaPem, 'tls.clientCaFile', now))
  if (tls.productionCaFile !== undefined)
    check(() => checkCaBundle(files.productionCaPem, 'production.caFile', now))
  if (tls.issuingCa)
    check(() => loadIssuingCa(files.issuerCertPem, files.issuerKeyPem, files.issuerChainPem, now))
  const operational = tls.operationalCaFile
  if (operational !== undefined && operational !== tls.issuingCa?.certFile)
    check(() => parseCaBundle(files.operationalCaPem, 'lifecycle.operationalCaFile', now))
  if (problems.length > 0) throw new ConfigError(problems)
}
