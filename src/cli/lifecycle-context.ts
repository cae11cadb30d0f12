import { readFileSync } from 'node:fs'
import { loadCa } from '../pki/signer.js'
import { AuditLog } from '../registration/audit-log.js'
import { writeCrl } from '../registration/crl-publisher.js'
import { openConfiguredRegistry } from '../registry/open.js'
import { type CONFIG_OPTIONS, configOf, type Flags } from './usage-error.js'

/** LifecycleEventRecord is an operator's lifecycle step in the audit log (never a key). */
export interface LifecycleEventRecord {
  readonly time: string
  readonly event: 'revoked' | 'reset'
  readonly identity: string
  readonly serialNumber?: string
  readonly reason?: string
}

/**
 * openLifecycle loads the configuration `serve` would (-c, --set, environment) and opens the same registry:
 * PostgreSQL with state.postgres.url, else the SQLite file (`devices --registry`), which it never creates (safe
 * while the bridge runs). The result is an operator command's view of the bridge's state: registry, audit log, CRL.
 */
export async function openLifecycle(
  flags: Flags<typeof CONFIG_OPTIONS> & { readonly registry?: string },
  options: { readonly readonly?: boolean } = {},
) {
  const config = configOf(flags, { 'registry.file': flags.registry })
  const registry = await openConfiguredRegistry(config, {
    mustExist: true,
    readonly: options.readonly === true,
  })
  let log: AuditLog<LifecycleEventRecord> | undefined // opened by the first write: a read creates no file
  return {
    config,
    registry,
    async audit(records: readonly LifecycleEventRecord[]): Promise<void> {
      log ??= new AuditLog<LifecycleEventRecord>(config.auditLog)
      const opened = log
      await Promise.all(records.map((r) => opened.append(r)))
    },
    /** writeCrl regenerates the CRL (embedded CA only); returns the file, or undefined with cert-manager. */
    async writeCrl(): Promise<string | undefined> {
      if (config.issuer.type !== 'local-ca') return undefined
      const { certFile, keyFile } = config.issuer.localCa
      const ca = loadCa(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'))
      await writeCrl(registry, ca, config.lifecycle.crl)
      return config.lifecycle.crl.file
    },
    async close(): Promise<void> {
      await log?.close()
      await registry.close()
    },
  }
}
