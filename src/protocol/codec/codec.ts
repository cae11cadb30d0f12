/**
 * A Codec is one wire format of requests and replies (JSON, CBOR), chosen by the topic a request arrives on and
 * carried with it to the publish of its answer. The decoders (messages.ts, gateway.ts) validate the same plain
 * object whatever the format, and the pipeline never sees it.
 */

/** WIRE_FORMATS are the formats a device may choose, by topic: JSON on the configured topics, CBOR beside them. */
export const WIRE_FORMATS = ['json', 'cbor'] as const

/** WireFormat names one format. */
export type WireFormat = (typeof WIRE_FORMATS)[number]

/** Codec reads a request and writes a reply in one format. */
export interface Codec {
  readonly format: WireFormat
  /**
   * decode reads a request into the plain object the decoders validate: text as strings, numbers, booleans,
   * arrays, objects, and (CBOR) byte strings as Uint8Array. It throws MALFORMED_REQUEST for anything else.
   */
  decode(bytes: Buffer): Record<string, unknown>
  /** encode writes a reply: an object of Reply's or GatewayReply's fields, `version` first. */
  encode(message: Readonly<Record<string, unknown>>): Buffer
  /** mayHaveField tells cheaply (a byte search) whether a payload may have a top-level field of this name. */
  mayHaveField(bytes: Buffer, name: string): boolean
  /** encodeRequest is a device's side: a request written as the bridge reads it (a PEM csr as DER in CBOR). */
  encodeRequest(request: Readonly<Record<string, unknown>>): Buffer
  /**
   * decodeReply is a device's side: a reply read back into JSON's shape (PEM text, base64, ISO times), for one
   * reader of replies whatever the format; what is not a reply's shape is left for the reader to refuse.
   */
  decodeReply(bytes: Buffer): unknown
}
