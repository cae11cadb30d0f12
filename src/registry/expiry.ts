import type { DeviceSummary, ExpiryState } from './registry.js'

/** EXPIRING_WITHIN_MS is what `expiring` means where no one says otherwise (the metric, `devices counts`): 7 days. */
export const EXPIRING_WITHIN_MS = 7 * 86_400_000

/** EXPIRY_STATES lists every ExpiryState (bounded metric label values, table rows). */
export const EXPIRY_STATES: readonly ExpiryState[] = ['active', 'expiring', 'expired', 'pending', 'revoked']

/**
 * expiryStateOf classifies an identity by its newest certificate: `revoked` if revoked, `pending` while an AWS
 * create call's certificate waits for RegisterThing (no working credential yet), `expired` once past
 * notAfter, `expiring` when notAfter falls within `withinMs` of `now`, else `active`.
 */
export function expiryStateOf(device: DeviceSummary, now: Date, withinMs: number): ExpiryState {
  if (device.state === 'revoked') return 'revoked'
  if (device.state === 'pending') return 'pending'
  const left = device.notAfter.getTime() - now.getTime()
  if (left <= 0) return 'expired'
  return left <= withinMs ? 'expiring' : 'active'
}

/** expiryCounts counts identities by ExpiryState (every state present, zero when none). */
export function expiryCounts(
  devices: readonly DeviceSummary[],
  now: Date,
  withinMs: number,
): Record<ExpiryState, number> {
  const counts: Record<ExpiryState, number> = { active: 0, expiring: 0, expired: 0, pending: 0, revoked: 0 }
  for (const d of devices) counts[expiryStateOf(d, now, withinMs)]++
  return counts
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** parseDuration reads `7d`, `12h`, `30m`, `90s`, `2w` as milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)([smhdw])$/.exec(text.trim())
  if (!match) return undefined
  return Number(match[1]) * (UNITS[match[2] as string] as number)
}
