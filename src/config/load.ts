import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import YAML from 'yaml'
import type { z } from 'zod'
import { DEV_PKI_FILES } from '../pki/dev-pki.js'
import { configSchema, type RawConfig } from './schema.js'

/** ConfigError lists every configuration problem at once, each naming its setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.problems = problems
  }
}

/** Config is the validated, frozen configuration with every file path resolved (resolvePaths). */
export type Config = Readonly<ReturnType<typeof resolvePaths>>

/** ConfigSources are where settings come from, lowest precedence first: file, environment, flags. */
export interface ConfigSources {
  readonly file?: string | undefined
  readonly env?: Readonly<Record<string, string | undefined>>
  /** `path=value` pairs from --set and the convenience flags, e.g. `listen.port=8883`. */
  readonly sets?: readonly string[]
  readonly cwd?: string
}

type Leaf = { readonly path: string[]; readonly kind: 'number' | 'boolean' | 'array' | 'string' }

/** unwrap looks through defaults, optionals and pipes to the schema of the setting itself. */
function unwrap(schema: z.ZodType): z.ZodType {
  const def = schema.def as { type: string; innerType?: z.ZodType; in?: z.ZodType }
  const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined)
  return inner ? unwrap(inner) : schema
}

/** settingLeaves lists every setting path with its kind, walking the schema itself. */
export function settingLeaves(schema: z.ZodType = configSchema, path: string[] = []): Leaf[] {
  const s = unwrap(schema)
  const type = s.def.type
  if (type === 'object') {
    const shape = (s as z.ZodObject).shape as Record<string, z.ZodType>
    return Object.entries(shape).flatMap(([key, child]) => settingLeaves(child, [...path, key]))
  }
  const kind = type === 'number' || type === 'boolean' || type === 'array' ? type : 'string'
  return [{ path, kind }]
}

/** envName is the environment variable of a setting: listen.port → MRB_LISTEN_PORT. */
export function envName(path: readonly string[]): string {
  const words = path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
  return `MRB_${words.join('_')}`
}

function coerce(kind: Leaf['kind'], text: string): unknown {
  if (kind === 'number') return text.trim() === '' ? text : Number(text)
  if (kind === 'boolean') return text === 'true' ? true : text === 'false' ? false : text
  if (kind === 'array')
    return text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  return text
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    node[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : {}
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1] ?? ''] = value
}

function readFileSource(file: string, problems: string[]): Record<string, unknown> {
  try {
    const parsed: unknown = YAML.parse(readFileSync(file, 'utf8'))
    if (parsed === null || parsed === undefined) return {}
    if (typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>
    problems.push(`config file ${file}: must hold a mapping of settings`)
  } catch (err) {
    problems.push(`config file ${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  return {}
}

function resolvePaths(raw: RawConfig, cwd: string) {
  const state = resolve(cwd, raw.stateDir)
  const pki = (name: string): string => resolve(state, 'pki', name)
  const file = (value: string | undefined, fallback: string): string => resolve(cwd, value ?? fallback)
  /** optional resolves a path setting without a default: `{ [key]: path }`, or nothing when it is unset. */
  const optional = <K extends string>(key: K, value: string | undefined) =>
    (value === undefined ? {} : { [key]: resolve(cwd, value) }) as { [P in K]?: string }
  const { localCa, certManager } = raw.issuer
  const caSettings = raw.issuer.type === 'local-ca' ? [localCa.certFile, localCa.keyFile] : []
  const pkiSettings = [raw.tls.certFile, raw.tls.keyFile, raw.tls.clientCaFile, ...caSettings]
  const { url } = raw.production
  return {
    ...raw,
    stateDir: state,
    tls: {
      certFile: file(raw.tls.certFile, pki(DEV_PKI_FILES.serverCert)),
      keyFile: file(raw.tls.keyFile, pki(DEV_PKI_FILES.serverKey)),
      clientCaFile: file(raw.tls.clientCaFile, pki(DEV_PKI_FILES.factoryCaCert)),
    },
    issuer: {
      type: raw.issuer.type,
      localCa: {
        certFile: file(localCa.certFile, pki(DEV_PKI_FILES.issuingCaCert)),
        keyFile: file(localCa.keyFile, pki(DEV_PKI_FILES.issuingCaKey)),
        ...optional('chainFile', localCa.chainFile),
      },
      certManager: {
        ...certManager,
        ...optional('kubeconfig', certManager.kubeconfig),
        // validated above: required when the type is cert-manager, unused otherwise
        issuerRef: { ...certManager.issuerRef, name: certManager.issuerRef.name ?? '' },
      },
    },
    auditLog: file(raw.auditLog, resolve(state, 'audit.log')),
    production: { ...(url === undefined ? {} : { url }), ...optional('caFile', raw.production.caFile) },
    /** True when every PKI file is left at its default: the bridge may create a development PKI. */
    usesDevPki: pkiSettings.every((v) => v === undefined),
    gateways: { ...raw.gateways, ...optional('policyFile', raw.gateways.policyFile) },
    hook: {
      ...raw.hook,
      ...optional('caFile', raw.hook.caFile),
      ...optional('clientCertFile', raw.hook.clientCertFile),
      ...optional('clientKeyFile', raw.hook.clientKeyFile),
      ...optional('bearerTokenFile', raw.hook.bearerTokenFile),
    },
    registry: { file: file(raw.registry.file, resolve(state, 'registry.sqlite')) },
    aws: { ...raw.aws, ...optional('templatesFile', raw.aws.templatesFile) },
    lifecycle: {
      ...raw.lifecycle,
      ...optional('operationalCaFile', raw.lifecycle.operationalCaFile),
      ...optional('denyListFile', raw.lifecycle.denyListFile),
      crl: { ...raw.lifecycle.crl, file: file(raw.lifecycle.crl.file, resolve(state, 'crl.pem')) },
    },
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/** loadConfig merges file, environment and flags over the defaults, validates once, and freezes the result. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const cwd = sources.cwd ?? process.cwd()
  const problems: string[] = []
  const merged = sources.file ? readFileSource(resolve(cwd, sources.file), problems) : {}
  const leaves = settingLeaves()
  for (const leaf of leaves) {
    const value = sources.env?.[envName(leaf.path)]
    if (value !== undefined) setPath(merged, leaf.path, coerce(leaf.kind, value))
  }
  for (const assignment of sources.sets ?? []) {
    const [key = '', ...rest] = assignment.split('=')
    const leaf = leaves.find((l) => l.path.join('.') === key)
    if (leaf && rest.length > 0) setPath(merged, leaf.path, coerce(leaf.kind, rest.join('=')))
    else problems.push(`--set ${assignment}: expected <setting>=<value> with a known setting`)
  }
  const result = configSchema.safeParse(merged)
  for (const issue of result.error?.issues ?? [])
    problems.push(`${issue.path.join('.') || '(top level)'}: ${issue.message}`)
  if (problems.length > 0 || !result.success) throw new ConfigError(problems)
  return deepFreeze(resolvePaths(result.data, cwd))
}
