import { isUtf8 } from 'node:buffer'
import { RegistrationError } from '../errors.js'
import type { Codec } from './codec.js'

const malformed = (message: string): RegistrationError => new RegistrationError('MALFORMED_REQUEST', message)

/** JSON_CODEC is UTF-8 JSON (RFC 8259), the format of the configured topics. */
export const JSON_CODEC: Codec = {
  format: 'json',
  decode(bytes) {
    let body: unknown
    try {
      if (!isUtf8(bytes)) throw new Error('not UTF-8')
      body = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw malformed('request is not UTF-8 JSON')
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw malformed('request must be a JSON object')
    return body as Record<string, unknown>
  },
  encode: (message) => Buffer.from(JSON.stringify(message)),
  mayHaveField: (bytes, name) => bytes.includes(`"${name}"`),
  encodeRequest: (request) => Buffer.from(JSON.stringify(request)),
  decodeReply: (bytes) => JSON.parse(bytes.toString('utf8')),
}
