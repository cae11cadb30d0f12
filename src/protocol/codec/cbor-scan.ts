import { isUtf8 } from 'node:buffer'

/** CBOR_MAX_DEPTH is the deepest nesting of arrays and maps a CBOR request may have (a batch needs 3). */
export const CBOR_MAX_DEPTH = 8

/**
 * scanCbor walks a CBOR payload's data item heads (RFC 8949 section 3) once, without building anything and
 * without recursion, and says what is wrong with it, or undefined: a head or string that runs past the end, a
 * declared length or count larger than the bytes left (every item takes at least one byte), an indefinite
 * length, a reserved additional-information value, a tag, nesting deeper than CBOR_MAX_DEPTH, a text string
 * that is not UTF-8 or that begins with U+FEFF, or bytes after the one top-level item. So the decoder that builds the object (cborg) only
 * ever sees input whose every declared size fits in the payload, which the size limits already bound.
 */
export function scanCbor(bytes: Uint8Array): string | undefined {
  const end = bytes.length
  let pos = 0
  // items still to read, per open container (the bottom entry is the one top-level item)
  const open: number[] = [1]
  while (open.length > 0) {
    const left = open.length - 1
    if (open[left] === 0) {
      open.pop()
      continue
    }
    open[left] = (open[left] as number) - 1
    if (pos >= end) return 'truncated'
    const head = bytes[pos++] as number
    const major = head >> 5
    const info = head & 31
    let arg = info
    if (info >= 28)
      return info === 31 ? 'indefinite lengths are not accepted' : 'reserved additional information'
    if (info >= 24) {
      const size = 1 << (info - 24)
      if (pos + size > end) return 'truncated'
      arg = 0
      for (let i = 0; i < size; i++) arg = arg * 256 + (bytes[pos + i] as number)
      pos += size
    }
    const rest = end - pos
    if (major === 2 || major === 3) {
      if (arg > rest) return `a string declares ${arg} bytes where ${rest} are left`
      if (major === 3 && !isUtf8(bytes.subarray(pos, pos + arg))) return 'a text string is not UTF-8'
      // TextDecoder (cborg's) drops a leading byte order mark: the text would silently not be what was sent
      if (
        major === 3 &&
        arg >= 3 &&
        bytes[pos] === 0xef &&
        bytes[pos + 1] === 0xbb &&
        bytes[pos + 2] === 0xbf
      )
        return 'a text string begins with U+FEFF (a byte order mark)'
      pos += arg
    } else if (major === 4 || major === 5) {
      const items = major === 5 ? arg * 2 : arg
      if (items > rest) return `a container declares ${arg} entries where ${rest} bytes are left`
      if (open.length > CBOR_MAX_DEPTH) return `nesting deeper than ${CBOR_MAX_DEPTH} levels`
      open.push(items)
    } else if (major === 6) {
      return 'tags are not accepted'
    }
  }
  return pos === end ? undefined : 'bytes after the request'
}
