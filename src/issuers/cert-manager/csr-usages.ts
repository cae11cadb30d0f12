import { csrExtensions } from '../../pki/csr.js'
import { oidHex } from '../../pki/der.js'
import { children, content, readElement, slice } from '../../pki/der-reader.js'
import { RegistrationError } from '../../protocol/errors.js'

/** ALLOWED_USAGES are the cert-manager usages a device certificate may carry. */
export const ALLOWED_USAGES = ['digital signature', 'key encipherment', 'client auth'] as const

/** cert-manager's names of the keyUsage bits (RFC 5280 4.2.1.3), in bit order. */
const KEY_USAGES = [
  'digital signature',
  'content commitment',
  'key encipherment',
  'data encipherment',
  'key agreement',
  'cert sign',
  'crl sign',
  'encipher only',
  'decipher only',
]
const EXTENDED = new Map(
  [
    ['1.3.6.1.5.5.7.3.1', 'server auth'],
    ['1.3.6.1.5.5.7.3.2', 'client auth'],
    ['1.3.6.1.5.5.7.3.3', 'code signing'],
    ['1.3.6.1.5.5.7.3.4', 'email protection'],
    ['1.3.6.1.5.5.7.3.8', 'timing'],
    ['1.3.6.1.5.5.7.3.9', 'ocsp signing'],
  ].map(([dotted = '', name]) => [oidHex(dotted), name]),
)

/** dotted is an OBJECT IDENTIFIER's content in dotted notation (for naming a usage cert-manager has no name for). */
function dotted(body: Buffer): string {
  const arcs: number[] = []
  let arc = 0
  for (const byte of body) {
    arc = arc * 128 + (byte & 0x7f)
    if (byte & 0x80) continue
    arcs.push(arc)
    arc = 0
  }
  const [first = 0, ...rest] = arcs
  const top = Math.min(2, Math.floor(first / 40))
  return [top, first - 40 * top, ...rest].join('.')
}

/**
 * csrUsages are the usages a CSR declares (keyUsage and extendedKeyUsage), in cert-manager's names, or
 * undefined when it declares none. cert-manager's webhook refuses a CertificateRequest whose spec.usages
 * differ from these, so the bridge takes them into spec.usages; a usage beyond ALLOWED_USAGES is refused
 * with EXTENSION_NOT_ALLOWED before anything is created.
 */
export function csrUsages(der: Buffer): string[] | undefined {
  const extensions = csrExtensions(der)
  const ku = extensions.find((e) => e.id === oidHex('2.5.29.15'))?.value
  const eku = extensions.find((e) => e.id === oidHex('2.5.29.37'))?.value
  if (!ku && !eku) return undefined
  const bits = ku ? content(ku, readElement(ku)) : Buffer.alloc(0) // the unused-bits octet, then the bits
  const purposes = eku ? children(eku, readElement(eku)) : []
  const usages = [
    ...KEY_USAGES.filter((_, i) => (bits[1 + (i >> 3)] ?? 0) & (0x80 >> (i & 7))),
    ...purposes.map((id) => {
      const oid = slice(eku as Buffer, id)
      return EXTENDED.get(oid.toString('hex')) ?? `oid ${dotted(content(eku as Buffer, id))}`
    }),
  ]
  const refused = usages.filter((u) => !(ALLOWED_USAGES as readonly string[]).includes(u))
  if (refused.length)
    throw new RegistrationError(
      'EXTENSION_NOT_ALLOWED',
      `the CSR asks for usages a device may not have: ${refused.join(', ')}`,
    )
  return usages
}
