import { readFileSync } from 'node:fs'
import { type Config, loadConfig } from '../config/load.js'
import { loadCa } from '../pki/signer.js'
import { AuditLog } from '../registration/audit-log.js'
import { writeCrl } from '../registration/crl-publisher.js'
import type { Registry } from '../registry/registry.js'
import { SqliteRegistry } from '../registry/sqlite-registry.js'

/** LifecycleFlags locate the bridge's configuration, as `serve` takes it. */
export interface LifecycleFlags {
  readonly config?: string | undefined
  readonly set?: string[] | undefined
  readonly 'state-dir'?: string | undefined
}

/** LifecycleEventRecord is an operator's lifecycle step in the audit log (never a key). */
export interface LifecycleEventRecord {
  readonly time: string
  readonly event: 'revoked' | 'reset'
  readonly identity: string
  readonly serialNumber?: string
  readonly reason?: string
}

/** LifecycleContext is an operator command's view of the bridge's state: registry, audit log, CRL. */
export interface LifecycleContext {
  readonly config: Config
  readonly registry: Registry
  audit(records: readonly LifecycleEventRecord[]): Promise<void>
  /** writeCrl regenerates the CRL (embedded CA only); returns the file, or undefined with cert-manager. */
  writeCrl(): Promise<string | undefined>
  close(): Promise<void>
}

/** openLifecycle loads the configuration `serve` would and opens its registry for writing (safe while it runs). */
export function openLifecycle(flags: LifecycleFlags): LifecycleContext {
  const sets = [
    ...(flags['state-dir'] === undefined ? [] : [`stateDir=${flags['state-dir']}`]),
    ...(flags.set ?? []),
  ]
  const config = loadConfig({ file: flags.config, env: process.env, sets })
  const registry = new SqliteRegistry(config.registry.file)
  const log = new AuditLog<LifecycleEventRecord>(config.auditLog)
  return {
    config,
    registry,
    async audit(records) {
      await Promise.all(records.map((r) => log.append(r)))
    },
    async writeCrl() {
      if (config.issuer.type !== 'local-ca') return undefined
      const { certFile, keyFile } = config.issuer.localCa
      const ca = loadCa(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'))
      await writeCrl(registry, ca, config.lifecycle.crl)
      return config.lifecycle.crl.file
    },
    async close() {
      await log.close()
      await registry.close()
    },
  }
}
