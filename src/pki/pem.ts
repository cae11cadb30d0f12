/** PEM encoding and decoding (RFC 7468). */

/** toPem wraps DER in a PEM block with 64-character lines. */
export function toPem(der: Buffer, label: string): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN ${label}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** PemBlock is one decoded PEM block. */
export interface PemBlock {
  readonly label: string
  readonly der: Buffer
}

/** fromPem decodes every PEM block in a text, in order. */
export function fromPem(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({
    label: m[1] ?? '',
    der: Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'),
  }))
}

/** certificatesFromPem returns the DER of every CERTIFICATE block. */
export function certificatesFromPem(text: string): Buffer[] {
  return fromPem(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der)
}
