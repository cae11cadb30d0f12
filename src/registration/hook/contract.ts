import { z } from 'zod'
import type { ExpandedTemplate, Narrowing } from '../../issuers/template.js'
import type { IssuanceEvent } from '../../registry/registry.js'

// The registration hook's JSON contract (docs/hook.md): what the bridge sends, what it accepts back.

/** HOOK_CONTRACT_VERSION is the `version` of every call; an answer of another version is malformed. */
export const HOOK_CONTRACT_VERSION = 1

/** HookCall is the body the bridge POSTs to the hook, once per registration (the same on each retry). */
export interface HookCall {
  readonly version: typeof HOOK_CONTRACT_VERSION
  /** Unique per registration, the same on every attempt: a hook can tell a retry from a new registration. */
  readonly callId: string
  readonly identity: string
  /** `renewal`: the device connected with its operational certificate; `registration` otherwise. */
  readonly kind: 'registration' | 'renewal'
  /** The lifecycle event this issuance would record; null without lifecycle settings. */
  readonly event: IssuanceEvent | null
  /** The gateway asking for this device (a gateway batch's item), else null. */
  readonly gateway: string | null
  readonly requestId: string | null
  /** `csr`: the device made its key; `server-key`: the bridge makes it. */
  readonly keySource: 'csr' | 'server-key'
  readonly keyAlgorithm: string
  /** The serial of the operational certificate being renewed, for a renewal. */
  readonly renewing: string | null
  /**
   * `aws`: an AWS fleet-provisioning create call (docs/aws-fleet-provisioning.md), whose certificate stays pending
   * until RegisterThing; absent for protocol v1.
   */
  readonly api?: 'aws'
  /** The certificate the bridge would issue: an answer may narrow it, never widen it. */
  readonly certificate: {
    readonly commonName: string
    readonly organization: string | null
    readonly dnsNames: readonly string[]
    readonly uris: readonly string[]
    readonly validityHours: number
  }
}

/** HookDecision is a valid answer: allow (maybe narrowed, maybe with an endpoint), or deny with a reason. */
export type HookDecision =
  | {
      readonly allow: true
      readonly narrowing?: Narrowing | undefined
      readonly endpoint?: string | undefined
    }
  | { readonly allow: false; readonly reason: string }

/** MAX_REASON_LENGTH bounds a deny reason (code points): it reaches the device and the logs. */
export const MAX_REASON_LENGTH = 200
const MAX_URL_LENGTH = 1024
const DEFAULT_REASON = 'denied by the registration hook'

/**
 * sanitizeReason makes a hook's reason safe for a device and a log line: control, format and separator
 * characters become spaces, runs of white space one, at most MAX_REASON_LENGTH code points.
 */
export function sanitizeReason(reason: string | undefined): string {
  const clean = (reason ?? '')
    .replace(/[\p{C}\p{Zl}\p{Zp}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  const bounded = [...clean].slice(0, MAX_REASON_LENGTH).join('').trim()
  return bounded === '' ? DEFAULT_REASON : bounded
}

/** ENDPOINT_SCHEMES are the schemes of a production broker a hook may assign (MQTT over TCP, TLS or WebSockets). */
const ENDPOINT_SCHEMES = ['mqtts:', 'mqtt:', 'ssl:', 'tls:', 'wss:', 'ws:']

/** brokerUrl tells whether a URL names a broker: an MQTT scheme, a host, and no user name or password in it. */
function brokerUrl(text: string): boolean {
  const url = URL.parse(text)
  return (
    url !== null &&
    ENDPOINT_SCHEMES.includes(url.protocol) &&
    url.hostname !== '' &&
    url.username === '' &&
    url.password === ''
  )
}

const endpointUrl = z
  .string()
  .max(MAX_URL_LENGTH)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII')
  .refine(
    brokerUrl,
    `must be a broker URL (${ENDPOINT_SCHEMES.join(' ')}) with a host and no user or password`,
  )

const answerSchema = z.discriminatedUnion('allow', [
  z.strictObject({
    version: z.literal(HOOK_CONTRACT_VERSION).optional(),
    allow: z.literal(true),
    certificate: z
      .strictObject({
        dnsNames: z.array(z.string()).max(100).optional(),
        uris: z.array(z.string()).max(100).optional(),
        validityHours: z.number().int().positive().optional(),
      })
      .optional(),
    endpoint: z.strictObject({ url: endpointUrl }).optional(),
  }),
  z.strictObject({
    version: z.literal(HOOK_CONTRACT_VERSION).optional(),
    allow: z.literal(false),
    reason: z.string().optional(),
  }),
])

/** MalformedAnswer is an answer the bridge cannot act on: not JSON, not the contract, or wider than offered. */
export class MalformedAnswer extends Error {
  override readonly name = 'MalformedAnswer'
}

const outside = (asked: readonly string[] | undefined, offered: readonly string[]): string | undefined =>
  asked?.find((name) => !offered.includes(name))

/**
 * parseAnswer reads the hook's answer against what was offered: a narrowing may keep a subset of the offered
 * names and a validity no longer than offered; anything else (another name, a longer validity, an unknown
 * field) makes the whole answer malformed, never a partly applied one.
 */
export function parseAnswer(body: string, offered: ExpandedTemplate): HookDecision {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    throw new MalformedAnswer('the answer is not JSON')
  }
  // a deny is always a deny: whatever else is wrong with it (a reason of another type, another field, another
  // version), it never becomes "unavailable", which hook.failOpen would turn into an issuance
  const deny = json as { allow?: unknown; reason?: unknown } | null
  if (typeof deny === 'object' && deny !== null && !Array.isArray(deny) && deny.allow === false)
    return { allow: false, reason: sanitizeReason(typeof deny.reason === 'string' ? deny.reason : undefined) }
  const parsed = answerSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new MalformedAnswer(`the answer is not the contract's: ${issue?.path.join('.')} ${issue?.message}`)
  }
  const answer = parsed.data
  if (!answer.allow) return { allow: false, reason: sanitizeReason(answer.reason) }
  const wanted = answer.certificate
  const foreignDns = outside(wanted?.dnsNames, offered.dnsNames)
  if (foreignDns !== undefined) throw new MalformedAnswer(`the answer widens dnsNames ("${foreignDns}")`)
  const foreignUri = outside(wanted?.uris, offered.uris)
  if (foreignUri !== undefined) throw new MalformedAnswer(`the answer widens uris ("${foreignUri}")`)
  if (wanted?.validityHours !== undefined && wanted.validityHours > offered.validityHours)
    throw new MalformedAnswer(
      `the answer widens validityHours (${wanted.validityHours} > ${offered.validityHours})`,
    )
  return {
    allow: true,
    ...(wanted === undefined ? {} : { narrowing: wanted }),
    ...(answer.endpoint === undefined ? {} : { endpoint: answer.endpoint.url }),
  }
}
