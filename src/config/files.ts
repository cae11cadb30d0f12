import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { certificatesFromPem } from '../pki/pem.js'
import { type Config, ConfigError } from './load.js'

/** ConfiguredFiles are the contents of every file the configuration names, read once at start-up ('' if unset). */
export type ConfiguredFiles = Readonly<ReturnType<typeof readConfiguredFiles>>

/** readConfiguredFiles reads every configured file, reporting all unreadable ones at once by setting name. */
export function readConfiguredFiles(config: Config) {
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
  const files = {
    serverCertPem: read('tls.certFile', config.tls.certFile),
    serverKeyPem: read('tls.keyFile', config.tls.keyFile),
    clientCaPem: read('tls.clientCaFile', config.tls.clientCaFile),
    issuerCertPem: read('issuer.localCa.certFile', localCa?.certFile),
    issuerKeyPem: read('issuer.localCa.keyFile', localCa?.keyFile),
    issuerChainPem: read('issuer.localCa.chainFile', localCa?.chainFile),
    productionCaPem: read('production.caFile', config.production.caFile),
    /** The operational CA bundle the listener trusts as well ('' when renewal is off: operationalCaFileOf). */
    operationalCaPem: read('lifecycle.operationalCaFile', operationalCaFileOf(config)),
  }
  const factoryCa = factoryCaIn(files.operationalCaPem, files.clientCaPem)
  if (config.lifecycle.operationalCaFile !== undefined && factoryCa !== undefined) {
    problems.push(
      `lifecycle.operationalCaFile: ${config.lifecycle.operationalCaFile} holds ${factoryCa}, a factory CA of ` +
        'tls.clientCaFile; it must hold only the CA that signs operational certificates',
    )
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return files
}

/** fingerprints are the SHA-256 fingerprints and subjects of a bundle's certificates (unparsable ones left out). */
function fingerprints(pem: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const der of certificatesFromPem(pem)) {
    try {
      const cert = new X509Certificate(der)
      found.set(cert.fingerprint256, cert.subject.replace(/\n/g, ', '))
    } catch {
      // not a certificate: the listener's own loading reports it
    }
  }
  return found
}

/**
 * factoryCaIn names the first certificate of the operational CA bundle that is also in tls.clientCaFile: a
 * factory CA there would let a factory certificate pass as an operational one.
 */
function factoryCaIn(operational: string, clientCaPem: string): string | undefined {
  const factory = fingerprints(clientCaPem)
  return [...fingerprints(operational)].find(([fingerprint]) => factory.has(fingerprint))?.[1]
}

/**
 * operationalCaFileOf is the CA bundle of operational certificates the listener trusts: lifecycle.operationalCaFile,
 * else the embedded CA's certificate; undefined when lifecycle.trustOperationalCa is false or none is known.
 */
export function operationalCaFileOf(config: Config): string | undefined {
  const { trustOperationalCa, operationalCaFile } = config.lifecycle
  if (!trustOperationalCa) return undefined
  return operationalCaFile ?? (config.issuer.type === 'local-ca' ? config.issuer.localCa.certFile : undefined)
}
