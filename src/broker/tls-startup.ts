import { readFileSync } from 'node:fs'
import { type ConfiguredFiles, operationalCaFileOf } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import {
  checkCaBundle,
  checkListenerPair,
  checkProductionCa,
  loadIssuingCa,
  parseCaBundle,
} from './tls-material.js'

/**
 * checkTlsMaterial refuses at start-up the TLS material that a reload would refuse (tls-material.ts): the
 * listener pair, the factory CA bundle, the production CA bundle, the embedded CA and the operational CA bundle,
 * every problem at once, as a ConfigError (exit 2). Files that cannot be read are reported where they are read.
 */
export function checkTlsMaterial(config: Config, files: ConfiguredFiles, now = new Date()): void {
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
  if (config.production.caFile !== undefined) check(() => checkProductionCa(files.productionCaPem, now))
  const localCa = config.issuer.type === 'local-ca' ? config.issuer.localCa : undefined
  if (localCa) check(() => loadIssuingCa(files.issuerCertPem, files.issuerKeyPem, files.issuerChainPem, now))
  const operational = operationalCaFileOf(config)
  if (operational !== undefined && operational !== localCa?.certFile) {
    let pem: string | undefined
    try {
      pem = readFileSync(operational, 'utf8')
    } catch {
      // reported by the lifecycle wiring, which reads it
    }
    if (pem !== undefined) check(() => parseCaBundle(pem, 'lifecycle.operationalCaFile', now))
  }
  if (problems.length > 0) throw new ConfigError(problems)
}
