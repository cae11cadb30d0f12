import type { parseArgs } from 'node:util'
import { type Config, loadConfig } from '../config/load.js'
import { REQUEST_ID_PATTERN } from '../protocol/messages.js'
import { isSafeIdentity } from '../protocol/topics.js'

type OptionsConfig = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>

/** Flags are the values parseArgs reads for a command's options (cli.ts parses each command's own). */
export type Flags<T extends OptionsConfig> = ReturnType<typeof parseArgs<{ options: T }>>['values']

/** CONFIG_OPTIONS locate the bridge's configuration: every command that reads it takes them. */
export const CONFIG_OPTIONS = {
  config: { type: 'string', short: 'c' },
  set: { type: 'string', multiple: true },
  'state-dir': { type: 'string' },
} as const

/** configOf loads the configuration: -c, environment, the shortcut flags (`{ setting: value }`), then --set. */
export function configOf(
  flags: Flags<typeof CONFIG_OPTIONS>,
  shortcuts: Record<string, unknown> = {},
): Config {
  const sets = Object.entries({ stateDir: flags['state-dir'], ...shortcuts })
    .filter(([, value]) => value !== undefined)
    .map(([setting, value]) => `${setting}=${value}`)
  return loadConfig({ file: flags.config, env: process.env, sets: [...sets, ...(flags.set ?? [])] })
}

/**
 * UsageError is a flag with a value the command cannot use; the CLI prints it with the command's help and exits
 * 2, before it reads a file, opens a store or sends anything.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** positiveNumber reads a numeric flag, or throws a UsageError naming it. */
export function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${flag} must be a positive number, not "${value}"`)
  }
  return n
}

/** positiveInteger reads a count flag (1, 2, …), or throws a UsageError naming it. */
export function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^[1-9][0-9]*$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${flag} must be a positive integer, not "${value}"`)
  }
  return Number(value)
}

/** identity checks an identity flag (or argument) against the identity grammar of docs/protocol.md. */
export function identity(flag: string, value: string): string {
  if (!isSafeIdentity(value)) {
    throw new UsageError(
      `${flag} must be an identity (1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit), not "${value}"`,
    )
  }
  return value
}

/** requestId checks --request-id; `room` characters are kept for a suffix the client adds (a batch number). */
export function requestId(value: string | undefined, room = 0): string | undefined {
  if (value === undefined) return undefined
  if (!REQUEST_ID_PATTERN.test(value) || value.length > 128 - room) {
    throw new UsageError(
      `--request-id must be 1-${128 - room} printable ASCII characters without spaces, not "${value}"`,
    )
  }
  return value
}

/** brokerUrl checks a URL flag (--url, --verify): mqtts:// or mqtt://, with a host. */
export function brokerUrl(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const url = URL.canParse(value) ? new URL(value) : undefined
  if (!url || !['mqtts:', 'mqtt:'].includes(url.protocol) || url.hostname === '') {
    throw new UsageError(
      `--${flag} must be an mqtts:// (or mqtt://) URL such as mqtts://localhost:8883, not "${value}"`,
    )
  }
  return value
}

export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, not "${value}"`)
  }
  return value as T
}

/** serialNumber checks --serial: hexadecimal digits, optionally in colon-separated pairs (as openssl prints). */
export function serialNumber(value: string): string {
  if (!/^[0-9a-fA-F]+$/.test(value.replaceAll(':', '')) || /^:|:$|::/.test(value)) {
    throw new UsageError(
      `--serial must be a hexadecimal serial number (e.g. 5b:a9:d7 or 5ba9d7), not "${value}"`,
    )
  }
  return value
}
