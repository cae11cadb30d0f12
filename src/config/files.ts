import { readFileSync } from 'node:fs'
import { type Config, ConfigError } from './load.js'

/** ConfiguredFiles are the contents of every file the configuration names, read once at start-up. */
export interface ConfiguredFiles {
  readonly serverCertPem: string
  readonly serverKeyPem: string
  readonly clientCaPem: string
  readonly issuerCertPem: string
  readonly issuerKeyPem: string
  readonly issuerChainPem: string
  readonly productionCaPem: string
}

/** readConfiguredFiles reads every configured file, reporting all unreadable ones at once by setting name. */
export function readConfiguredFiles(config: Config): ConfiguredFiles {
  const problems: string[] = []
  const read = (setting: string, path: string | undefined): string => {
    if (path === undefined) return ''
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      problems.push(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      return ''
    }
  }
  const localCa = config.issuer.type === 'local-ca' ? config.issuer.localCa : undefined
  const files: ConfiguredFiles = {
    serverCertPem: read('tls.certFile', config.tls.certFile),
    serverKeyPem: read('tls.keyFile', config.tls.keyFile),
    clientCaPem: read('tls.clientCaFile', config.tls.clientCaFile),
    issuerCertPem: read('issuer.localCa.certFile', localCa?.certFile),
    issuerKeyPem: read('issuer.localCa.keyFile', localCa?.keyFile),
    issuerChainPem: read('issuer.localCa.chainFile', localCa?.chainFile),
    productionCaPem: read('production.caFile', config.production.caFile),
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return files
}
