import { malformed } from './errors.js'

/**
 * A strict X.690 DER reader: every length, tag and primitive content is checked as DER requires, and every
 * element must end inside its parent. Failures are PkiError MALFORMED.
 */

/** Element is one decoded TLV: its tag, where its content lies, and where the whole element ends. */
export interface Element {
  readonly tag: number
  readonly start: number
  readonly contentStart: number
  readonly end: number
}

/**
 * readElement decodes the DER TLV at `offset`, which must end by `limit` (its parent's end): no high tag numbers,
 * indefinite or non-minimal lengths, or constructed encodings of primitive universal types.
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
