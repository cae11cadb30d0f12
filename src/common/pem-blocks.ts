// PEM blocks read leniently (RFC 7468's "lax" parsing): the one reader of PEM text the bridge wrote itself or that a
// file holds, below both pki/ (certificate bundles) and protocol/ (CBOR replies carry the DER of PEM fields).

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** pemBlocks is every PEM block of a text, in order: its label and its DER (whitespace inside is skipped). */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({
    label: m[1] ?? '',
    der: Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'),
  }))
}

/** toPem wraps DER in a PEM block with 64-character lines. */
export function toPem(der: Buffer, label: string): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN ${label}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`
}
