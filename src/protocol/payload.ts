import { type Codec, codecOf } from './codec/codecs.js'
import { RegistrationError } from './errors.js'

/**
 * Payload is a request as it came off the wire, decoded (by the codec of the topic it came on: JSON or CBOR) at
 * most once whoever reads it: the routing (a gateway batch or a v1 request), the decoder, and the requestId of a
 * rejection all share one decode. Its codec also writes the request's answers.
 */
export class Payload {
  readonly bytes: Buffer
  readonly codec: Codec
  #decoded: { readonly object: Record<string, unknown> } | { readonly problem: RegistrationError } | undefined

  constructor(bytes: Buffer, codec: Codec = codecOf('json')) {
    this.bytes = bytes
    this.codec = codec
  }

  /** of wraps a Buffer as JSON (a Payload stays itself). */
  static of(payload: Buffer | Payload): Payload {
    return payload instanceof Payload ? payload : new Payload(payload)
  }

  get size(): number {
    return this.bytes.length
  }

  /** object is the payload's object; MALFORMED_REQUEST when its format cannot read it, or it is not an object. */
  object(): Record<string, unknown> {
    const decoded = this.#decode()
    if ('object' in decoded) return decoded.object
    throw decoded.problem
  }

  /** peek is the payload's object, or undefined; it never throws. */
  peek(): Record<string, unknown> | undefined {
    const decoded = this.#decode()
    return 'object' in decoded ? decoded.object : undefined
  }

  /** mayHaveField tells cheaply whether the payload may have a top-level field `name`, without decoding it. */
  mayHaveField(name: string): boolean {
    return this.codec.mayHaveField(this.bytes, name)
  }

  #decode() {
    if (this.#decoded) return this.#decoded
    try {
      this.#decoded = { object: this.codec.decode(this.bytes) }
    } catch (err) {
      const problem =
        err instanceof RegistrationError
          ? err
          : new RegistrationError('MALFORMED_REQUEST', 'request is unreadable')
      this.#decoded = { problem }
    }
    return this.#decoded
  }
}
