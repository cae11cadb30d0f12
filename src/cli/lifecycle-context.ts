import { readFileSync } from 'node:fs'
import { type Config, loadConfig } from '../config/load.js'
import { loadCa } from '../pki/signer.js'
import { AuditLog } from '../registration/audit-log.js'
import { writeCrl } from '../registration/crl-publisher.js'
import { openConfiguredRegistry } from '../registry/open.js'
import type { Registry } from '../registry/registry.js'

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

/** LifecycleOpenFlags also take `devices`' --registry FILE (the SQLite registry.file). */
export interface LifecycleOpenFlags extends LifecycleFlags {
  readonly registry?: string | undefined
}

/**
 * openLifecycle loads the configuration `serve` would (-c, --set, environment) and opens the same registry:
 * PostgreSQL with state.postgres.url, else the SQLite file, which it never creates (safe while the bridge runs).
 */
export async function openLifecycle(
  flags: LifecycleOpenFlags,
  options: { readonly readonly?: boolean } = {},
): Promise<LifecycleContext> {
  const sets = [
    ...(flags['state-dir'] === undefined ? [] : [`stateDir=${flags['state-dir']}`]),
    ...(flags.registry === undefined ? [] : [`registry.file=${flags.registry}`]),
    ...(flags.set ?? []),
  ]
  const config = loadConfig({ file: flags.config, env: process.env, sets })
  const registry = await openConfiguredRegistry(config, {
    mustExist: true,
    readonly: options.readonly === true,
  })
  let log: AuditLog<LifecycleEventRecord> | undefined // opened by the first write: a read creates no file
  return {
    config,
    registry,
    async audit(records) {
      log ??= new AuditLog<LifecycleEventRecord>(config.auditLog)
      const opened = log
      await Promise.all(records.map((r) => opened.append(r)))
    },
    async writeCrl() {
      if (config.issuer.type !== 'local-ca') return undefined
      const { certFile, keyFile } = config.issuer.localCa
      const ca = loadCa(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'))
      await writeCrl(registry, ca, config.lifecycle.crl)
      return config.lifecycle.crl.file
    },
    async close() {
      await log?.close()
      await registry.close()
    },
  }
}
