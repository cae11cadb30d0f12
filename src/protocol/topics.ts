import { WIRE_FORMATS, type WireFormat } from './codec/codec.js'

/**
 * Topic grammar of protocol v1. Identities are restricted to characters that are inert in MQTT topics,
 * so an identity can be embedded in a reply topic without creating wildcards or extra levels.
 */

/** IDENTITY_PATTERN is the grammar of a device identity: 1–128 of A–Z a–z 0–9 . _ - starting alphanumeric. */
export const IDENTITY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** isSafeIdentity tells whether an identity may appear as one topic level. */
export function isSafeIdentity(identity: string): boolean {
  return IDENTITY_PATTERN.test(identity)
}

/**
 * Topics holds the bootstrap topics and builds reply topics. A device chooses the wire format by topic, as AWS IoT
 * does: JSON on the configured topics, CBOR on the same topics with a `/cbor` level after them.
 */
export interface Topics {
  /** The JSON request topic (topics.request). */
  readonly request: string
  /** requestTopics are every format's request topic: consumed by the bridge, never delivered. */
  readonly requestTopics: readonly string[]
  /** formatOf is the wire format of a request topic, or undefined for any other topic. */
  formatOf(topic: string): WireFormat | undefined
  replyTopic(identity: string, format?: WireFormat): string
}

/** formatTopic is a topic of a wire format: the JSON topic itself, or it with a `/cbor` level after it. */
const formatTopic = (topic: string, format: WireFormat): string =>
  format === 'json' ? topic : `${topic}/${format}`

/** createTopics builds the topic set from the configured request topic and reply prefix. */
export function createTopics(request: string, replyPrefix: string): Topics {
  const requests = new Map(WIRE_FORMATS.map((format) => [formatTopic(request, format), format]))
  return {
    request,
    requestTopics: [...requests.keys()],
    formatOf: (topic) => requests.get(topic),
    replyTopic: (identity, format = 'json') => formatTopic(`${replyPrefix}/${identity}/reply`, format),
  }
}

/** isValidTopicName tells whether a string is a concrete topic name (no wildcards, no NUL, not empty). */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !/[+#]/.test(topic) && !topic.includes('\u0000')
}
