import { isUtf8 } from 'node:buffer'
import { RegistrationError } from './errors.js'

/**
 * Payload is a request as it came off the wire, parsed (UTF-8 JSON) at most once whoever reads it: the routing
 * (a gateway batch or a v1 request), the decoder, and the requestId of a rejection all share one parse.
 */
export class Payload {
  readonly bytes: Buffer
  #parsed: { readonly object?: Record<string, unknown>; readonly problem?: string } | undefined

  constructor(bytes: Buffer) {
    this.bytes = bytes
  }

  /** of wraps a Buffer (a Payload stays itself). */
  static of(payload: Buffer | Payload): Payload {
    return payload instanceof Payload ? payload : new Payload(payload)
  }

  get size(): number {
    return this.bytes.length
  }

  /** object is the payload's JSON object; MALFORMED_REQUEST when it is not UTF-8 JSON, or not an object. */
  object(): Record<string, unknown> {
    const parsed = this.#parse()
    if (parsed.object) return parsed.object
    throw new RegistrationError('MALFORMED_REQUEST', parsed.problem ?? 'request is not UTF-8 JSON')
  }

  /** peek is the payload's JSON object, or undefined; it never throws. */
  peek(): Record<string, unknown> | undefined {
    return this.#parse().object
  }

  #parse(): { readonly object?: Record<string, unknown>; readonly problem?: string } {
    if (this.#parsed) return this.#parsed
    let body: unknown
    try {
      if (!isUtf8(this.bytes)) throw new Error('not UTF-8')
      body = JSON.parse(this.bytes.toString('utf8'))
    } catch {
      this.#parsed = { problem: 'request is not UTF-8 JSON' }
      return this.#parsed
    }
    this.#parsed =
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? { object: body as Record<string, unknown> }
        : { problem: 'request must be a JSON object' }
    return this.#parsed
  }
}
