import { EXPIRY_STATES, expiryStateOf, parseDuration } from '../registry/expiry.js'
import type { DeviceRecord, DeviceSummary } from '../registry/registry.js'
import { openLifecycle } from './lifecycle-context.js'
import { CONFIG_OPTIONS, identity as checkIdentity, type Flags, UsageError } from './usage-error.js'

export const DEVICES_HELP = `Usage: registration-bridge devices list [options]
       registration-bridge devices show IDENTITY [options]
       registration-bridge devices counts [--expiring 7d] [options]
       registration-bridge devices reset IDENTITY [options]

Reads the registry of identities the bridge has issued for (safe while the bridge runs): the one the bridge
opens from the same configuration (-c FILE, --set, environment), PostgreSQL with state.postgres.url, else the
SQLite file, which it never creates.

Options:
  -c, --config FILE      the bridge's configuration file
  --set SETTING=VALUE    override one setting (repeatable)
  --state-dir DIR        the bridge's state directory (stateDir; default ./.registration-bridge)
  --registry FILE        the SQLite registry file (registry.file; default <state-dir>/registry.sqlite)
  --owner GATEWAY        list: only the devices this gateway owns
  --expiring DURATION    list: only identities whose newest certificate expires within it (e.g. 7d, 12h),
                         expired ones included; counts: what "expiring" means (default 7d)
  --json                 print JSON instead of a table: every field, null where there is none (e.g. the
                         owner of a device that registers itself)

'counts' counts identities by their newest certificate: active, expiring, expired, revoked.
'reset' lets the identity register again with its factory certificate (lifecycle.reRegistration after-reset,
and after a revocation), and records it in the audit log.`

export const DEVICES_OPTIONS = {
  ...CONFIG_OPTIONS,
  registry: { type: 'string' },
  owner: { type: 'string' },
  json: { type: 'boolean' },
  expiring: { type: 'string' },
} as const

/** DevicesFlags are the flags of `devices` and its positionals (`_`: the action and the identity). */
type DevicesFlags = Flags<typeof DEVICES_OPTIONS> & { readonly _?: readonly string[] }

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const padded = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')
  return rows.map((r) => padded(r).trimEnd()).join('\n')
}

function listText(devices: readonly DeviceSummary[]): string {
  const head = ['IDENTITY', 'OWNER', 'SERIAL', 'NOT AFTER', 'STATE']
  const rows = devices.map((d) => [
    d.identity,
    d.owner ?? '-',
    d.serialNumber,
    d.notAfter.toISOString(),
    expiryStateOf(d, new Date(), 0) === 'expired' ? 'expired' : d.state,
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

/** asJson prints `--json`: every field, null where there is none (e.g. a self-registered device's owner). */
const asJson = (value: unknown): string => JSON.stringify(value, (_, v: unknown) => v ?? null, 2)

/** devicesCommand lists the registry, shows or resets one identity, or counts identities by state. */
export async function devicesCommand(flags: DevicesFlags): Promise<void> {
  const [action, identity, ...extra] = flags._ ?? []
  const takesIdentity = action === 'show' || action === 'reset'
  if (
    (action !== 'list' && action !== 'show' && action !== 'counts' && action !== 'reset') ||
    extra.length > 0 ||
    takesIdentity !== (identity !== undefined)
  ) {
    throw new UsageError(
      'expected "devices list", "devices show IDENTITY", "devices counts" or "devices reset IDENTITY"',
    )
  }
  const withinMs = parseDuration(flags.expiring ?? '7d')
  if (withinMs === undefined)
    throw new UsageError(`--expiring must be a duration such as 7d, 12h or 30m, not "${flags.expiring}"`)
  if (identity !== undefined) checkIdentity(`devices ${action} IDENTITY`, identity)
  if (flags.owner !== undefined) checkIdentity('--owner', flags.owner)
  const context = await openLifecycle(flags, { readonly: action !== 'reset' })
  const { registry } = context
  try {
    if (action === 'reset') {
      // recorded in the registry and the audit log
      const at = new Date()
      if (!(await registry.reset(identity ?? '', at)))
        throw new Error(`no identity "${identity}" in the registry`)
      await context.audit([{ time: at.toISOString(), event: 'reset', identity: identity ?? '' }])
      process.stdout.write(`reset ${identity}: it may register again with its factory certificate\n`)
      return
    }
    if (action === 'counts') {
      // one aggregate query: the registry is never read row by row into the process
      const counts = await registry.expiryCounts(new Date(), withinMs)
      const text = table([['STATE', 'IDENTITIES'], ...EXPIRY_STATES.map((s) => [s, String(counts[s])])])
      process.stdout.write(`${flags.json ? asJson(counts) : text}\n`)
      return
    }
    if (action === 'list') {
      const all = await registry.list(flags.owner === undefined ? {} : { owner: flags.owner })
      const now = new Date()
      const devices =
        flags.expiring === undefined
          ? all
          : all.filter((d) => ['expiring', 'expired'].includes(expiryStateOf(d, now, withinMs)))
      process.stdout.write(`${flags.json ? asJson(devices) : listText(devices)}\n`)
      return
    }
    const device = await registry.device(identity ?? '')
    if (!device) throw new Error(`no identity "${identity}" in the registry`)
    process.stdout.write(`${flags.json ? asJson(device) : showText(device)}\n`)
  } finally {
    await context.close()
  }
}
