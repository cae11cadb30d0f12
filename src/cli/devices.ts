import { join, resolve } from 'node:path'
import type { DeviceRecord, DeviceSummary } from '../registry/registry.js'
import { SqliteRegistry } from '../registry/sqlite-registry.js'

/** DEVICES_HELP documents `devices`. */
export const DEVICES_HELP = `Usage: registration-bridge devices list [options]
       registration-bridge devices show IDENTITY [options]

Reads the registry of identities the bridge has issued for (safe while the bridge runs).

Options:
  --state-dir DIR        where the registry lives (default ./.registration-bridge)
  --registry FILE        the registry file (default <state-dir>/registry.sqlite)
  --owner GATEWAY        list: only the devices this gateway owns
  --json                 print JSON instead of a table`

/** DevicesFlags are the parsed flags of `devices`. */
export interface DevicesFlags {
  readonly _?: readonly string[]
  readonly 'state-dir'?: string | undefined
  readonly registry?: string | undefined
  readonly owner?: string | undefined
  readonly json?: boolean | undefined
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

function listText(devices: readonly DeviceSummary[]): string {
  const head = ['IDENTITY', 'OWNER', 'SERIAL', 'NOT AFTER', 'STATE']
  const rows = devices.map((d) => [
    d.identity,
    d.owner ?? '-',
    d.serialNumber,
    d.notAfter.toISOString(),
    d.state,
  ])
  return table([head, ...rows])
}

function showText(d: DeviceRecord): string {
  const head = [
    `identity: ${d.identity}`,
    `owner: ${d.owner ?? '- (registers itself)'}`,
    `first issued: ${d.firstIssuedAt.toISOString()}`,
    `last issued: ${d.lastIssuedAt.toISOString()}`,
    '',
  ]
  const rows = d.certificates.map((c) => [
    c.serialNumber,
    c.state + (c.supersededBy ? ` by ${c.supersededBy}` : ''),
    c.notAfter.toISOString(),
    c.keySource,
    c.registeredBy ?? '-',
    c.issuedAt.toISOString(),
  ])
  return (
    head.join('\n') + table([['SERIAL', 'STATE', 'NOT AFTER', 'KEY', 'REGISTERED BY', 'ISSUED'], ...rows])
  )
}

/** devicesCommand lists the registry or shows one identity. */
export async function devicesCommand(flags: DevicesFlags): Promise<void> {
  const [action, identity, ...extra] = flags._ ?? []
  if (
    (action !== 'list' && action !== 'show') ||
    extra.length > 0 ||
    (action === 'show') !== (identity !== undefined)
  ) {
    throw new Error(`expected "devices list" or "devices show IDENTITY"\n\n${DEVICES_HELP}`)
  }
  const file = resolve(
    flags.registry ?? join(flags['state-dir'] ?? '.registration-bridge', 'registry.sqlite'),
  )
  let registry: SqliteRegistry
  try {
    registry = new SqliteRegistry(file, { readonly: true })
  } catch (err) {
    throw new Error(`cannot open the registry ${file}: ${(err as Error).message}`)
  }
  try {
    if (action === 'list') {
      const devices = await registry.list(flags.owner === undefined ? {} : { owner: flags.owner })
      process.stdout.write(`${flags.json ? JSON.stringify(devices, null, 2) : listText(devices)}\n`)
      return
    }
    const device = await registry.device(identity ?? '')
    if (!device) throw new Error(`no identity "${identity}" in the registry ${file}`)
    process.stdout.write(`${flags.json ? JSON.stringify(device, null, 2) : showText(device)}\n`)
  } finally {
    await registry.close()
  }
}
