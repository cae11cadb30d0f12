import { malformed } from './errors.js'

/**
 * A small DER writer and TLV reader. Certificates are built by concatenating pre-encoded parts, which costs
 * microseconds; a generic ASN.1 object model costs milliseconds per certificate (see docs/benchmarks.md).
 */

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** tlv encodes one DER element from its tag byte and content. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content])
}

/** sequence encodes a SEQUENCE of already-encoded elements. */
export const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts))
/** set encodes a SET of already-encoded elements (callers pass them in DER order). */
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts))
/** explicit wraps an element in a constructed context tag [n]. */
export const explicit = (n: number, part: Buffer): Buffer => tlv(0xa0 | n, part)
/** octetString encodes an OCTET STRING. */
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes)
/** utf8String encodes a UTF8String. */
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'))
/** boolean encodes a DER BOOLEAN. */
export const boolean = (value: boolean): Buffer => Buffer.from([0x01, 0x01, value ? 0xff : 0x00])
/** NULL is the DER NULL element. */
export const NULL = Buffer.from([0x05, 0x00])

/** bitString encodes a BIT STRING with the given number of unused trailing bits. */
export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]))
}

/** unsignedInteger encodes a non-negative big-endian integer, adding a leading zero where DER needs one. */
export function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  const trimmed = bytes.subarray(start)
  const needsPad = (trimmed[0] ?? 0) & 0x80
  return tlv(0x02, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

/** smallInteger encodes a small non-negative integer. */
export function smallInteger(value: number): Buffer {
  const bytes: number[] = []
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]))
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

const pad2 = (n: number): string => String(n).padStart(2, '0')

/** time encodes a certificate time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear()
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds())
  if (year < 2050) return tlv(0x17, Buffer.from(`${pad2(year % 100)}${rest}Z`, 'ascii'))
  return tlv(0x18, Buffer.from(`${year}${rest}Z`, 'ascii'))
}

/** Element is one decoded TLV: its tag, where its content lies, and where the whole element ends. */
export interface Element {
  readonly tag: number
  readonly start: number
  readonly contentStart: number
  readonly end: number
}

/**
 * readElement decodes the DER TLV at `offset`, which must end by `limit` (its parent's end). It refuses, with a
 * MALFORMED PkiError, what X.690 DER forbids: high tag numbers, indefinite or non-minimal lengths, and
 * constructed encodings of primitive universal types.
 */
export function readElement(buf: Buffer, offset = 0, limit = buf.length): Element {
  const tag = buf[offset]
  const first = buf[offset + 1]
  if (tag === undefined || first === undefined || offset + 2 > limit) throw malformed('truncated DER')
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag numbers are not used here')
  if ((tag & 0xe0) === 0x20 && tag !== 0x30 && tag !== 0x31)
    throw malformed('constructed encoding of a primitive type')
  if ((tag & 0xe0) === 0x00 && (tag === 0x10 || tag === 0x11)) throw malformed('primitive SEQUENCE or SET')
  let length = first
  let contentStart = offset + 2
  if (first & 0x80) {
    const count = first & 0x7f
    if (count === 0) throw malformed('indefinite length')
    if (count > 3) throw malformed('length too large')
    if (buf[contentStart] === 0) throw malformed('non-minimal length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (buf[contentStart + i] ?? Number.NaN)
    if (length < 0x80) throw malformed('non-minimal length')
    contentStart += count
  }
  const end = contentStart + length
  if (!Number.isFinite(end) || end > limit) throw malformed('element runs past its parent')
  return { tag, start: offset, contentStart, end }
}

/** children lists the elements inside a constructed element; they must fill it exactly. */
export function children(buf: Buffer, parent: Element): Element[] {
  if (!(parent.tag & 0x20)) throw malformed('expected a constructed element')
  const out: Element[] = []
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readElement(buf, offset, parent.end)
    out.push(child)
    offset = child.end
  }
  return out
}

/** readOnly decodes a buffer that must hold exactly one DER element (e.g. an extension value). */
export function readOnly(buf: Buffer): Element {
  const el = readElement(buf)
  if (el.end !== buf.length) throw malformed('bytes after the element')
  checkDer(buf, el)
  return el
}

/** content returns the content octets of an element. */
export const content = (buf: Buffer, el: Element): Buffer => buf.subarray(el.contentStart, el.end)

/** slice returns the full encoding of an element. */
export const slice = (buf: Buffer, el: Element): Buffer => buf.subarray(el.start, el.end)

/** expect checks that an element is present and has the given tag. */
export function expect(el: Element | undefined, tag: number, what = 'element'): Element {
  if (!el || el.tag !== tag) throw malformed(`expected ${what} (tag 0x${tag.toString(16)})`)
  return el
}

/** exactly checks that a constructed element holds between `min` and `max` children, and returns them. */
export function exactly(buf: Buffer, parent: Element, min: number, max = min): Element[] {
  const list = children(buf, parent)
  if (list.length < min || list.length > max) throw malformed('wrong number of elements')
  return list
}

function checkOid(bytes: Buffer): void {
  if (bytes.length === 0 || bytes.length > 64) throw malformed('bad OBJECT IDENTIFIER length')
  if ((bytes[bytes.length - 1] ?? 0) & 0x80) throw malformed('OBJECT IDENTIFIER ends inside an arc')
  for (let i = 0; i < bytes.length; i++) {
    const starts = i === 0 || !((bytes[i - 1] ?? 0) & 0x80)
    if (starts && bytes[i] === 0x80) throw malformed('non-minimal OBJECT IDENTIFIER arc')
  }
}

/** checkPrimitive applies the DER content rules of BOOLEAN, INTEGER, BIT STRING, NULL and OBJECT IDENTIFIER. */
function checkPrimitive(buf: Buffer, el: Element): void {
  const bytes = content(buf, el)
  switch (el.tag) {
    case 0x01:
      if (bytes.length !== 1 || (bytes[0] !== 0 && bytes[0] !== 0xff)) throw malformed('non-DER BOOLEAN')
      return
    case 0x02: {
      const [a = 0, b = 0] = bytes
      if (bytes.length === 0) throw malformed('empty INTEGER')
      if (bytes.length > 1 && ((a === 0 && !(b & 0x80)) || (a === 0xff && b & 0x80)))
        throw malformed('non-minimal INTEGER')
      return
    }
    case 0x03: {
      const unused = bytes[0]
      if (unused === undefined || unused > 7 || (bytes.length === 1 && unused !== 0))
        throw malformed('bad BIT STRING')
      if (((bytes[bytes.length - 1] ?? 0) & ((1 << unused) - 1)) !== 0)
        throw malformed('BIT STRING with non-zero unused bits')
      return
    }
    case 0x05:
      if (bytes.length !== 0) throw malformed('NULL with content')
      return
    case 0x06:
      checkOid(bytes)
      return
  }
}

/** checkDer walks an element and everything it contains, applying the DER rules above at every level. */
export function checkDer(buf: Buffer, el: Element, depth = 0): void {
  if (depth > 24) throw malformed('DER nested too deeply')
  if (el.tag & 0x20) for (const child of children(buf, el)) checkDer(buf, child, depth + 1)
  else checkPrimitive(buf, el)
}
