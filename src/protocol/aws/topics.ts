import { WIRE_FORMATS, type WireFormat } from '../codec/codec.js'

/**
 * The topic grammar of AWS IoT fleet provisioning (docs/aws-fleet-provisioning.md), beside protocol v1's: three
 * request topics per wire format, each answered on the same topic with `/accepted` or `/rejected` after it.
 */

/** AwsOperation is one fleet-provisioning API. */
export type AwsOperation = 'CreateKeysAndCertificate' | 'CreateCertificateFromCsr' | 'RegisterThing'

/** AwsRequestTopic is a request topic read: its API, wire format and (RegisterThing) template name. */
export interface AwsRequestTopic {
  readonly topic: string
  readonly operation: AwsOperation
  readonly format: WireFormat
  readonly templateName?: string
}

/** TEMPLATE_NAME is AWS's grammar of a provisioning template name (CreateProvisioningTemplate): 1–36 of it. */
export const TEMPLATE_NAME = /^[0-9A-Za-z_-]{1,36}$/

/** AWS_TOPIC_PREFIX starts every topic of the set; with aws.enabled off, nothing under it is allowed. */
export const AWS_TOPIC_PREFIX = '$aws/'

/** AWS_OUTCOMES are the two answers of every request topic. */
export const AWS_OUTCOMES = ['accepted', 'rejected'] as const
export type AwsOutcome = (typeof AWS_OUTCOMES)[number]

const CREATE = /^\$aws\/certificates\/(create|create-from-csr)\/([a-z]+)$/
// any template level but a wildcard or NUL: a name outside TEMPLATE_NAME is answered (TemplateNotFound), not refused
const PROVISION = /^\$aws\/provisioning-templates\/([^/]+)\/provision\/([a-z]+)$/

const formatOf = (name: string | undefined): WireFormat | undefined =>
  (WIRE_FORMATS as readonly string[]).includes(name ?? '') ? (name as WireFormat) : undefined

/** parseAwsRequestTopic reads a request topic of the set, or undefined for any other topic. */
export function parseAwsRequestTopic(topic: string): AwsRequestTopic | undefined {
  const create = CREATE.exec(topic)
  if (create) {
    const format = formatOf(create[2])
    if (!format) return undefined
    const operation = create[1] === 'create' ? 'CreateKeysAndCertificate' : 'CreateCertificateFromCsr'
    return { topic, operation, format }
  }
  const provision = PROVISION.exec(topic)
  const format = formatOf(provision?.[2])
  const templateName = provision?.[1]
  if (!format || templateName === undefined || /[+#]/.test(templateName) || templateName.includes('\0'))
    return undefined
  return { topic, operation: 'RegisterThing', format, templateName }
}

/** awsReplyTopic is where a request's answer goes: its topic with `/accepted` or `/rejected` after it. */
export const awsReplyTopic = (request: AwsRequestTopic, outcome: AwsOutcome): string =>
  `${request.topic}/${outcome}`

/** isAwsReplyTopic tells whether a topic is exactly one of the set's reply topics (a device may subscribe to it). */
export function isAwsReplyTopic(topic: string): boolean {
  const slash = topic.lastIndexOf('/')
  const outcome = topic.slice(slash + 1)
  return (
    (AWS_OUTCOMES as readonly string[]).includes(outcome) &&
    parseAwsRequestTopic(topic.slice(0, slash)) !== undefined
  )
}
