import { decode, encode } from 'cborg'
import { pemBlocks } from '../../common/pem-blocks.js'
import { RegistrationError } from '../errors.js'
import { scanCbor } from './cbor-scan.js'
import type { Codec } from './codec.js'

// cborg (pure JavaScript, no native module, maintained, strict options) builds the object. What it does not bound,
// scanCbor does first: it recurses once per nesting level with no limit (5,000 nested arrays, 5 KB, overflow the
// stack), decodes text with a non-fatal TextDecoder (invalid UTF-8 becomes U+FFFD), and reads a container's declared
// count item by item until the payload runs out. Byte and text strings it checks against the bytes left itself.

const malformed = (message: string): RegistrationError => new RegistrationError('MALFORMED_REQUEST', message)

// strict: minimal heads only; no undefined, NaN, Infinity or integers past 2^53; a repeated map key is refused
// (where JSON takes the last one); maps come as Maps so that no key, `__proto__` included, is set on an object
const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: true,
} as const

/** plain turns cborg's Maps into plain objects (own properties only); a key that is not text is refused. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain)
  if (!(value instanceof Map)) return value
  const entries: [string, unknown][] = []
  for (const [key, item] of value) {
    if (typeof key !== 'string') throw malformed('map keys must be text strings')
    entries.push([key, plain(item)])
  }
  return Object.fromEntries(entries)
}

/** derOf is the DER of every PEM block of a text, in order. */
const derOf = (pem: string): Buffer[] => pemBlocks(pem).map((block) => block.der)

/**
 * BINARY says how a reply field that is text in JSON travels in CBOR: certificate chains as arrays of DER byte
 * strings, the key as one DER byte string (PKCS#8), a PKCS#12 bundle as its DER bytes, times as integer seconds
 * since the epoch.
 */
const BINARY: Readonly<Record<string, (value: string) => unknown>> = {
  certificate: derOf,
  caCertificates: derOf,
  privateKey: (pem) => derOf(pem)[0],
  pkcs12: (base64) => Buffer.from(base64, 'base64'),
  notBefore: (iso) => Math.floor(Date.parse(iso) / 1000),
  notAfter: (iso) => Math.floor(Date.parse(iso) / 1000),
}

/** CBOR_CODEC is CBOR (RFC 8949), the format of the `/cbor` topics. */
export const CBOR_CODEC: Codec = {
  format: 'cbor',
  decode(bytes) {
    const problem = scanCbor(bytes)
    if (problem !== undefined) throw malformed(`request is not well-formed CBOR: ${problem}`)
    let body: unknown
    try {
      body = plain(decode(bytes, DECODE_OPTIONS))
    } catch (err) {
      if (err instanceof RegistrationError) throw err
      throw malformed(
        `request is not valid CBOR: ${(err as Error).message.replace(/^CBOR decode error: /, '')}`,
      )
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array)
      throw malformed('request must be a CBOR map')
    return body as Record<string, unknown>
  },
  encode(message) {
    const fields = Object.entries(message).map(([key, value]) => {
      const convert = BINARY[key]
      return [key, convert && typeof value === 'string' ? convert(value) : value] as const
    })
    return Buffer.from(encode(Object.fromEntries(fields)))
  },
  // a text key of up to 23 bytes is its length byte (0x60 + n), then the name
  mayHaveField: (bytes, name) => bytes.includes(Buffer.from(name)),
}
