import { existsSync } from 'node:fs'
import { type Config, ConfigError } from '../config/load.js'
import { PostgresRegistry } from './postgres-registry.js'
import type { Registry } from './registry.js'
import { SqliteRegistry } from './sqlite-registry.js'

/**
 * openConfiguredRegistry opens the registry the configuration names, for the bridge and the CLI alike:
 * PostgreSQL when state.postgres.url is set, otherwise the SQLite file registry.file. A registry that cannot be
 * opened is an error naming its setting. For tools, `readonly` opens SQLite read-only (PostgreSQL is shared and
 * opened as the bridge does) and `mustExist` refuses to create a SQLite file (the bridge creates it).
 */
export async function openConfiguredRegistry(
  config: Config,
  options: { readonly readonly?: boolean; readonly mustExist?: boolean } = {},
): Promise<Registry> {
  const url = config.state.postgres.url
  if (url !== undefined) {
    return PostgresRegistry.open(url) // its error names state.postgres.url
  }
  const file = config.registry.file
  if ((options.mustExist || options.readonly) && !existsSync(file)) {
    throw new Error(`registry.file: no registry at ${file} (the bridge creates it when it first runs)`)
  }
  try {
    return new SqliteRegistry(file, { readonly: options.readonly === true })
  } catch (err) {
    throw new ConfigError([`registry.file: ${(err as Error).message}`])
  }
}
