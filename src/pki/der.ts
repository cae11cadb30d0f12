/**
 * A small DER writer (the strict reader is der-reader.ts). Certificates are built by concatenating pre-encoded parts, which costs
 * microseconds; a generic ASN.1 object model costs milliseconds per certificate (see docs/benchmarks.md).
 */

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content])
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts))
/** set encodes a SET of already-encoded elements (callers pass them in DER order). */
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts))
/** explicit wraps an element in a constructed context tag [n]. */
export const explicit = (n: number, part: Buffer): Buffer => tlv(0xa0 | n, part)
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes)
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'))
export const boolean = (value: boolean): Buffer => Buffer.from([0x01, 0x01, value ? 0xff : 0x00])
export const NULL = Buffer.from([0x05, 0x00])

/** bitString encodes a BIT STRING with the given number of unused trailing bits. */
export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]))
}

/** unsignedInteger encodes a non-negative integer (a number, a bigint or big-endian bytes) in minimal DER. */
export function unsignedInteger(value: Buffer | number | bigint): Buffer {
  const hex = typeof value === 'object' ? '' : value.toString(16)
  const bytes = typeof value === 'object' ? value : Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex')
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  const trimmed = bytes.subarray(start)
  const needsPad = (trimmed[0] ?? 0) & 0x80
  return tlv(0x02, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

const oidCache = new Map<string, Buffer>()

/** oid encodes an OBJECT IDENTIFIER from dotted notation (cached: OIDs are a small fixed set). */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted)
  if (cached) return cached
  const arcs = dotted.split('.').map(Number)
  const body: number[] = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0)]
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f]
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128))
      chunk.unshift(0x80 | (rest & 0x7f))
    body.push(...chunk)
  }
  const encoded = tlv(0x06, Buffer.from(body))
  oidCache.set(dotted, encoded)
  return encoded
}

/** oidHex is the DER of an OBJECT IDENTIFIER as hex, to compare with what a reader sliced out. */
export const oidHex = (dotted: string): string => oid(dotted).toString('hex')

/** time encodes a certificate time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
export function time(date: Date): Buffer {
  const digits = date.toISOString().replace(/\D/g, '').slice(0, 14) // YYYYMMDDHHMMSS
  if (date.getUTCFullYear() < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
  return tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'))
}
