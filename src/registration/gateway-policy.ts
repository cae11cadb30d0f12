import { dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import YAML from 'yaml'
import { z } from 'zod'
import { type ReadText, ReloadableFile, readReloadedText } from '../config/reloadable-file.js'
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../protocol/messages.js'
import { isSafeIdentity } from '../protocol/topics.js'

const identityPattern = z
  .string()
  .min(1)
  .refine(
    (p) => isSafeIdentity(p.replaceAll('{gateway}', 'g').replaceAll('*', 'x')),
    'must be an identity, with * wildcards and {gateway} allowed',
  )

const ruleSchema = z.strictObject({
  /** The gateway identity: exact, or a pattern with `*`. */
  match: identityPattern,
  devices: z
    .strictObject({
      patterns: z.array(identityPattern).default([]),
      allowListFile: z.string().min(1).optional(),
    })
    .prefault({}),
  quota: z
    .strictObject({
      maxDevices: z.number().int().positive().default(1000),
      perMinute: z.number().positive().default(600),
      burst: z.number().int().positive().default(100),
    })
    .prefault({}),
  keyAlgorithms: z.array(z.enum(KEY_ALGORITHMS)).min(1).optional(),
  serverKeys: z.boolean().default(true),
  /** The gateway may take a device another gateway owns. */
  transfer: z.boolean().default(false),
  /** The gateway may take a device that registered itself with its own factory certificate. */
  adopt: z.boolean().default(false),
})

/** gatewayPolicySchema is the shape of the gateway policy file (docs/configuration.md, "Gateway policy"). */
export const gatewayPolicySchema = z.strictObject({ gateways: z.array(ruleSchema).default([]) })

/** GatewayRule is one validated rule, with its device patterns and its allow-list read. */
export type GatewayRule = Readonly<Omit<z.output<typeof ruleSchema>, 'devices'>> & {
  readonly patterns: readonly string[]
  readonly allowList: ReadonlySet<string>
}

/** GatewayPolicy is the whole policy: rules in file order; the first rule whose `match` fits a gateway applies. */
export interface GatewayPolicy {
  readonly rules: readonly GatewayRule[]
}

/** DEVICE_DENIALS are why the policy lets a gateway not register a device (a per-device `reason`), with the message. */
export const DEVICE_DENIALS = {
  DEVICE_NOT_ALLOWED: 'the gateway policy does not name this device for this gateway',
  DEVICE_IS_A_GATEWAY: 'the gateway policy makes this identity a gateway; no gateway may register it',
  SERVER_KEY_NOT_ALLOWED: 'the gateway policy does not allow server-side keys for this gateway',
  KEY_ALGORITHM_NOT_ALLOWED: 'the gateway policy does not allow this key algorithm for this gateway',
} as const

export type DeviceDenial = keyof typeof DEVICE_DENIALS

/** matchesPattern tells whether an identity fits a pattern (`*` any run of identity characters). */
export function matchesPattern(identity: string, pattern: string): boolean {
  const escaped = pattern.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '[A-Za-z0-9._-]*' : `\\${c}`))
  return new RegExp(`^${escaped}$`).test(identity)
}

function readAllowList(file: string, read: ReadText): Set<string> {
  const ids = read(file)
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
  const bad = ids.find((id) => !isSafeIdentity(id))
  if (bad !== undefined) throw new Error(`${file}: "${bad}" is not an identity`)
  return new Set(ids)
}

/**
 * loadGatewayPolicy reads and validates a policy file (and its allow-lists, through `read`); it throws with every
 * problem. A file with no document (empty, comments only) throws: no gateways at all is `gateways: []`.
 */
export function loadGatewayPolicy(file: string, read: ReadText = readReloadedText): GatewayPolicy {
  let parsed: unknown
  try {
    parsed = YAML.parse(read(file))
  } catch (err) {
    throw new Error(`gateway policy ${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  if (parsed === null || parsed === undefined)
    throw new Error(`gateway policy ${file}: holds no policy; no gateways at all is written \`gateways: []\``)
  const result = gatewayPolicySchema.safeParse(parsed)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
    throw new Error(`gateway policy ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  }
  const rules = result.data.gateways.map(({ devices, ...rule }): GatewayRule => {
    const allowList = devices.allowListFile
      ? readAllowList(resolve(dirname(file), devices.allowListFile), read)
      : new Set<string>()
    return { ...rule, patterns: devices.patterns, allowList }
  })
  return { rules }
}

/** GatewayPolicySource is the gateway policy in force, reloaded without a restart (no file: no gateways). */
export class GatewayPolicySource extends ReloadableFile<GatewayPolicy> {
  constructor(file: string | undefined, logger: Logger) {
    super(file, logger, {
      what: 'gateway policy',
      load: loadGatewayPolicy,
      empty: { rules: [] },
      describe: (policy) => ({ rules: policy.rules.length }),
    })
  }
}

/** ruleFor returns the rule that makes `identity` a gateway, or undefined for a plain device. */
export function ruleFor(policy: GatewayPolicy, identity: string): GatewayRule | undefined {
  return policy.rules.find((r) => matchesPattern(identity, r.match))
}

/**
 * mayRegister decides whether the policy lets `gateway` (whose rule is `rule`) register `deviceId` with this kind
 * of key. An identity the policy makes a gateway (itself included) is never a downstream device, whatever the
 * patterns say: a gateway that could obtain it would hold another gateway's credentials.
 */
export function mayRegister(
  policy: GatewayPolicy,
  rule: GatewayRule,
  gateway: string,
  deviceId: string,
  key: { readonly serverKey: boolean; readonly algorithm: KeyAlgorithm },
): DeviceDenial | undefined {
  if (deviceId === gateway || ruleFor(policy, deviceId) !== undefined) return 'DEVICE_IS_A_GATEWAY'
  const named =
    rule.allowList.has(deviceId) ||
    rule.patterns.some((p) => matchesPattern(deviceId, p.replaceAll('{gateway}', gateway)))
  if (!named) return 'DEVICE_NOT_ALLOWED'
  if (key.serverKey && !rule.serverKeys) return 'SERVER_KEY_NOT_ALLOWED'
  if (rule.keyAlgorithms && !rule.keyAlgorithms.includes(key.algorithm)) return 'KEY_ALGORITHM_NOT_ALLOWED'
  return undefined
}
