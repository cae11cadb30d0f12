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

/** Topics holds the bootstrap topic and builds reply topics. */
export interface Topics {
  readonly request: string
  replyTopic(identity: string): string
}

/** createTopics builds the topic set from the configured request topic and reply prefix. */
export function createTopics(request: string, replyPrefix: string): Topics {
  return {
    request,
    replyTopic: (identity) => `${replyPrefix}/${identity}/reply`,
  }
}

/** isValidTopicName tells whether a string is a concrete topic name (no wildcards, no NUL, not empty). */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !/[+#]/.test(topic) && !topic.includes('\u0000')
}
