import { decode, encode } from 'cborg'
import { pemBlocks, toPem } from '../../common/pem-blocks.js'
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

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array
/** pemOf is the PEM of DER byte strings (one or an array), or undefined when the value is not that. */
const pemOf = (label: string) => (value: unknown) => {
  const ders = Array.isArray(value) ? value : [value]
  return ders.every(isBytes) ? ders.map((der) => toPem(Buffer.from(der), label)).join('') : undefined
}
const seconds = {
  cbor: (iso: string) => Math.floor(Date.parse(iso) / 1000),
  text: (value: unknown) =>
    typeof value === 'number' && Number.isSafeInteger(value)
      ? new Date(value * 1000).toISOString()
      : undefined,
}

/**
 * BINARY says how a field that is text in JSON travels in CBOR (`cbor`) and back (`text`, a device's side):
 * certificate chains as arrays of DER byte strings, the key as one DER byte string (PKCS#8), a PKCS#12 bundle as
 * its DER bytes, times as integer seconds since the epoch; in a request, a PEM csr as its DER.
 */
const BINARY: Readonly<
  Record<string, { cbor(value: string): unknown; text(value: unknown): string | undefined }>
> = {
  certificate: { cbor: derOf, text: pemOf('CERTIFICATE') },
  caCertificates: { cbor: derOf, text: pemOf('CERTIFICATE') },
  privateKey: {
    cbor: (pem) => derOf(pem)[0],
    text: (v) => (isBytes(v) ? pemOf('PRIVATE KEY')(v) : undefined),
  },
  pkcs12: {
    cbor: (base64) => Buffer.from(base64, 'base64'),
    text: (v) => (isBytes(v) ? Buffer.from(v).toString('base64') : undefined),
  },
  notBefore: seconds,
  notAfter: seconds,
}
const REQUEST_BINARY: typeof BINARY = {
  csr: {
    cbor: (pem) => derOf(pem)[0] ?? pem,
    text: (v) => (isBytes(v) ? Buffer.from(v).toString('base64') : undefined),
  },
}

/** convert writes each field of `message` the table names through `way`, keeping the others as they are. */
function convert(message: Readonly<Record<string, unknown>>, table: typeof BINARY, way: 'cbor' | 'text') {
  return Object.fromEntries(
    Object.entries(message).map(([key, value]) => {
      const field = table[key]
      if (!field) return [key, value]
      if (way === 'cbor') return [key, typeof value === 'string' ? field.cbor(value) : value]
      return [key, field.text(value) ?? value]
    }),
  )
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
  encode: (message) => Buffer.from(encode(convert(message, BINARY, 'cbor'))),
  // a text key of up to 23 bytes is its length byte (0x60 + n), then the name
  mayHaveField: (bytes, name) => bytes.includes(Buffer.from(name)),
  encodeRequest: (request) => Buffer.from(encode(convert(request, REQUEST_BINARY, 'cbor'))),
  decodeReply(bytes) {
    const body = plain(decode(bytes, DECODE_OPTIONS))
    if (typeof body !== 'object' || body === null || Array.isArray(body) || isBytes(body)) return body
    return convert(body as Record<string, unknown>, BINARY, 'text')
  },
}
