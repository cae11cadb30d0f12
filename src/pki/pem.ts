import { pemBlocks } from '../common/pem-blocks.js'
import { malformed } from './errors.js'

/** PEM encoding and decoding (RFC 7468). */

export { toPem } from '../common/pem-blocks.js'

/** canonicalBase64 decodes base64 that is the one encoding of its bytes (no junk, no stray bits), or undefined. */
export function canonicalBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64')
  return /^[A-Za-z0-9+/]*={0,2}$/.test(text) && bytes.toString('base64') === text ? bytes : undefined
}

const PEM_STRICT = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g

/**
 * fromPemStrict decodes the PEM blocks of a text (RFC 7468 strict: no headers, nothing but base64 and line
 * breaks inside a block, canonical base64); throws PkiError MALFORMED on junk inside a block.
 */
export function fromPemStrict(text: string): { label: string; der: Buffer }[] {
  const blocks = [...text.matchAll(PEM_STRICT)].map((m) => {
    const der = canonicalBase64((m[2] ?? '').replace(/\r?\n/g, ''))
    if (!der) throw malformed(`junk inside the ${m[1]} PEM block`)
    return { label: m[1] ?? '', der }
  })
  if (blocks.length !== (text.match(/-----BEGIN /g) ?? []).length) throw malformed('unreadable PEM block')
  return blocks
}

/** certificatesFromPem returns the DER of every CERTIFICATE block, in order (leniently: whitespace is skipped). */
export function certificatesFromPem(text: string): Buffer[] {
  return pemBlocks(text)
    .filter((block) => block.label === 'CERTIFICATE')
    .map((block) => block.der)
}
