import { normalSerial } from '../registration/deny-list.js'
import { REVOCATION_REASONS, type RevocationReason } from '../registry/registry.js'
import { type LifecycleEventRecord, openLifecycle } from './lifecycle-context.js'
import { CONFIG_OPTIONS, type Flags, identity, oneOf, serialNumber, UsageError } from './usage-error.js'

export const REVOKE_HELP = `Usage: registration-bridge revoke --identity ID | --serial SERIAL [--reason REASON] [options]

Revokes operational certificates: the registry marks them revoked (they can no longer renew; a revoked
identity cannot register again until 'devices reset'), the audit log records it, and with the embedded CA
the CRL (lifecycle.crl.file, served at /crl) is written again at once, so a production broker with
'crlfile' refuses them. With cert-manager the issuer's own CRL/OCSP is the issuer's job: see docs/operations.md.

  --identity ID          revoke every certificate of this identity that is not revoked yet
  --serial SERIAL        revoke one certificate (hex, colons allowed)
  --reason REASON        ${Object.keys(REVOCATION_REASONS).join(' | ')} (default unspecified)
  -c, --config FILE      the bridge's configuration file
  --set SETTING=VALUE    override one setting (repeatable)
  --state-dir DIR        the bridge's state directory (stateDir)
Exit status: 0 revoked, 1 nothing to revoke or an error, 2 usage (e.g. a serial that is not hexadecimal).`

export const REVOKE_OPTIONS = {
  ...CONFIG_OPTIONS,
  identity: { type: 'string' },
  serial: { type: 'string' },
  reason: { type: 'string' },
} as const

/** revokeCommand revokes by identity or serial, records it, and rewrites the CRL. */
export async function revokeCommand(flags: Flags<typeof REVOKE_OPTIONS>): Promise<void> {
  if ((flags.identity === undefined) === (flags.serial === undefined)) {
    throw new UsageError('give exactly one of --identity and --serial')
  }
  const reasons = Object.keys(REVOCATION_REASONS) as RevocationReason[]
  const reason = oneOf('reason', flags.reason ?? 'unspecified', reasons)
  if (flags.identity !== undefined) identity('--identity', flags.identity)
  if (flags.serial !== undefined) serialNumber(flags.serial)
  const context = await openLifecycle(flags)
  try {
    const { registry } = context
    const serials: { serialNumber: string; identity: string }[] = []
    if (flags.identity !== undefined) {
      const device = await registry.device(flags.identity)
      if (!device) throw new Error(`no identity "${flags.identity}" in the registry`)
      for (const c of device.certificates) if (c.state !== 'revoked') serials.push(c)
    } else {
      const serial = normalSerial(flags.serial ?? '')
      // the registry keeps whole octets (a serial whose first octet is below 0x10 starts with a 0 digit)
      const found =
        (await registry.certificate(serial)) ??
        (serial.length % 2 === 1 ? await registry.certificate(`0${serial}`) : undefined)
      if (!found) throw new Error(`no certificate with serial ${serial} in the registry`)
      if (found.state !== 'revoked') serials.push(found)
    }
    if (serials.length === 0) throw new Error('nothing to revoke: already revoked')
    const at = new Date()
    for (const s of serials) await registry.revoke(s.serialNumber, { at, reason })
    const records: LifecycleEventRecord[] = serials.map((s) => ({
      time: at.toISOString(),
      event: 'revoked',
      identity: s.identity,
      serialNumber: s.serialNumber,
      reason,
    }))
    await context.audit(records)
    const crl = await context.writeCrl()
    for (const s of serials) process.stdout.write(`revoked ${s.identity} ${s.serialNumber} (${reason})\n`)
    process.stdout.write(
      crl
        ? `CRL written to ${crl}\n`
        : 'cert-manager issues: the registry and deny list refuse it here; revoke it at the issuer too\n',
    )
  } finally {
    await context.close()
  }
}
