import type { Logger } from 'pino'
import YAML from 'yaml'
import { z } from 'zod'
import { type ReadText, ReloadableFile, readReloadedText } from '../../config/reloadable-file.js'
import { TEMPLATE_NAME } from '../../protocol/aws/topics.js'
import { isSafeIdentity } from '../../protocol/topics.js'
import { matchesPattern } from '../gateway-policy.js'

/**
 * Provisioning templates (aws.templatesFile, YAML; docs/aws-fleet-provisioning.md): what RegisterThing may do here.
 * A template names the identities that may use it, the parameters it takes (required, default, pattern), the thing
 * name recorded in the registry and the deviceConfiguration of its answer, both filled from `{Parameter}` and
 * `{identity}` references. The certificate exists before RegisterThing names a template (AWS's too): a template
 * cannot shape it, only require things of it through `identities`.
 */

const PARAMETER_NAME = /^[A-Za-z0-9_]{1,64}$/
const REFERENCE = /\{([^{}]*)\}/g

const identityPattern = z
  .string()
  .min(1)
  .refine((p) => isSafeIdentity(p.replaceAll('*', 'x')), 'must be an identity, with * wildcards allowed')

const parameterSchema = z.strictObject({
  required: z.boolean().default(false),
  default: z.string().optional(),
  /** A regular expression the value must match, whole. */
  pattern: z
    .string()
    .refine((p) => {
      try {
        new RegExp(p)
        return true
      } catch {
        return false
      }
    }, 'is not a regular expression')
    .optional(),
})

const templateSchema = z
  .strictObject({
    name: z.string().regex(TEMPLATE_NAME, 'must be 1-36 of 0-9 A-Z a-z _ -'),
    identities: z.array(identityPattern).min(1),
    parameters: z
      .record(z.string().regex(PARAMETER_NAME, 'is not a parameter name'), parameterSchema)
      .default({}),
    thingName: z.string().min(1).default('{identity}'),
    deviceConfiguration: z.record(z.string().min(1), z.string()).default({}),
  })
  .superRefine((t, ctx) => {
    const texts = [t.thingName, ...Object.values(t.deviceConfiguration)]
    for (const text of texts)
      for (const [, name] of text.matchAll(REFERENCE))
        if (name !== 'identity' && !(name !== undefined && name in t.parameters))
          ctx.addIssue({ code: 'custom', message: `{${name}} is neither {identity} nor a parameter` })
    for (const [name, p] of Object.entries(t.parameters))
      if (p.default !== undefined && p.pattern !== undefined && !whole(p.pattern).test(p.default))
        ctx.addIssue({
          code: 'custom',
          path: ['parameters', name],
          message: 'default does not match pattern',
        })
  })

const fileSchema = z.strictObject({ templates: z.array(templateSchema) }).superRefine((f, ctx) => {
  const names = f.templates.map((t) => t.name)
  const twice = names.find((n, i) => names.indexOf(n) !== i)
  if (twice !== undefined) ctx.addIssue({ code: 'custom', message: `template ${twice} is defined twice` })
})

/** ProvisioningTemplate is one validated template. */
export type ProvisioningTemplate = z.output<typeof templateSchema>

/** Templates are the templates in force, by name. */
export type Templates = ReadonlyMap<string, ProvisioningTemplate>

const whole = (pattern: string): RegExp => new RegExp(`^(?:${pattern})$`)

/** loadTemplates reads and validates a templates file; it throws with every problem. */
export function loadTemplates(file: string, read: ReadText = readReloadedText): Templates {
  let parsed: unknown
  try {
    parsed = YAML.parse(read(file))
  } catch (err) {
    throw new Error(`provisioning templates ${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  const result = fileSchema.safeParse(parsed)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
    throw new Error(`provisioning templates ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  }
  return new Map(result.data.templates.map((t) => [t.name, t]))
}

/** TemplatesSource is the templates file in force, reloaded without a restart (a bad file keeps the old one). */
export class TemplatesSource extends ReloadableFile<Templates> {
  constructor(file: string | undefined, logger: Logger) {
    super(file, logger, {
      what: 'provisioning templates',
      load: loadTemplates,
      empty: new Map(),
      describe: (templates) => ({ templates: templates.size }),
    })
  }
}

/** mayUse tells whether an identity may use a template. */
export const mayUse = (template: ProvisioningTemplate, identity: string): boolean =>
  template.identities.some((p) => matchesPattern(identity, p))

/** THING_NAME is AWS's grammar of a thing name. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/

/**
 * fill resolves a RegisterThing's parameters against a template: every declared parameter given or defaulted,
 * required ones present, each matching its pattern (undeclared ones are ignored, as the template never reads them);
 * then the thing name and deviceConfiguration. Throws a message for InvalidParameters.
 */
export function fill(
  template: ProvisioningTemplate,
  identity: string,
  given: Readonly<Record<string, string>>,
): { thingName: string; deviceConfiguration: Record<string, string>; parameters: Record<string, string> } {
  const values: Record<string, string> = {}
  for (const [name, p] of Object.entries(template.parameters)) {
    const value = Object.hasOwn(given, name) ? given[name] : p.default
    if (value === undefined) {
      if (p.required) throw new Error(`parameter ${name} is required`)
      continue
    }
    if (p.pattern !== undefined && !whole(p.pattern).test(value))
      throw new Error(`parameter ${name} does not match ${p.pattern}`)
    values[name] = value
  }
  const resolve = (text: string): string =>
    text.replace(REFERENCE, (_, name: string) => {
      const value = name === 'identity' ? identity : values[name]
      if (value === undefined) throw new Error(`parameter ${name} is not given and has no default`)
      return value
    })
  const thingName = resolve(template.thingName)
  if (!THING_NAME.test(thingName))
    throw new Error(`the thing name "${thingName}" is not 1-128 of a-z A-Z 0-9 : _ -`)
  const deviceConfiguration = Object.fromEntries(
    Object.entries(template.deviceConfiguration).map(([key, text]) => [key, resolve(text)]),
  )
  return { thingName, deviceConfiguration, parameters: values }
}
