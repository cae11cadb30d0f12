import { CBOR_CODEC } from './cbor.js'
import type { Codec, WireFormat } from './codec.js'
import { JSON_CODEC } from './json.js'

export type { Codec, WireFormat } from './codec.js'
export { WIRE_FORMATS } from './codec.js'

/** codecOf is the codec of a wire format. */
export const codecOf = (format: WireFormat): Codec => (format === 'cbor' ? CBOR_CODEC : JSON_CODEC)
