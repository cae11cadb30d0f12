import { oidHex } from './der.js'
import {
  children,
  content,
  type Element,
  exactly,
  expect,
  readElement,
  readOnly,
  slice,
} from './der-reader.js'
import { malformed } from './errors.js'

const COMMON_NAME = oidHex('2.5.4.3')
const SUBJECT_ALT_NAME = oidHex('2.5.29.17')
const utf8 = new TextDecoder('utf-8', { fatal: true })
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/

/**
 * DNS_NAME is the preferred name syntax of RFC 1123 that RFC 5280 (4.2.1.6) asks of DNS SANs: dot-separated
 * labels of 1-63 letters, digits and inner hyphens, at most 253 characters, no empty label, no trailing dot.
 */
export const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/**
 * decodeDirectoryString decodes the string types a name attribute may use (X.520 DirectoryString, plus
 * IA5String): invalid UTF-8, characters outside PrintableString or IA5String, odd BMPString lengths and any
 * other type are MALFORMED.
 */
export function decodeDirectoryString(der: Buffer, el: Element): string {
  const bytes = content(der, el)
  switch (el.tag) {
    case 0x0c: // UTF8String
      try {
        return utf8.decode(bytes)
      } catch {
        throw malformed('invalid UTF-8 in a UTF8String')
      }
    case 0x13: // PrintableString
      if (!PRINTABLE.test(bytes.toString('latin1'))) throw malformed('invalid PrintableString')
      return bytes.toString('latin1')
    case 0x16: // IA5String
      if (bytes.some((b) => b > 0x7f)) throw malformed('invalid IA5String')
      return bytes.toString('latin1')
    case 0x14: // TeletexString, read as Latin-1
      return bytes.toString('latin1')
    case 0x1e: // BMPString, UTF-16BE
      if (bytes.length % 2) throw malformed('odd-length BMPString')
      return Buffer.from(bytes).swap16().toString('utf16le')
    case 0x1c: {
      // UniversalString, UTF-32BE
      if (bytes.length % 4) throw malformed('bad UniversalString length')
      const points: number[] = []
      for (let i = 0; i < bytes.length; i += 4) points.push(bytes.readUInt32BE(i))
      if (points.some((p) => p > 0x10ffff || (p >= 0xd800 && p <= 0xdfff))) throw malformed('bad code point')
      return String.fromCodePoint(...points)
    }
    default:
      throw malformed('unsupported string type in a name')
  }
}

/**
 * certificateParts reads the subject, the SubjectPublicKeyInfo and the extensions (OID as hex, value) of an X.509
 * certificate from its DER. Throws PkiError MALFORMED on anything it cannot read exactly.
 */
export function certificateParts(der: Buffer) {
  const [tbs] = exactly(der, expect(readElement(der), 0x30, 'Certificate'), 3)
  const fields = children(der, expect(tbs, 0x30, 'TBSCertificate'))
  // TBSCertificate: [0] version (absent in v1), serial, signature, issuer, validity, subject, spki, ...
  const base = fields[0]?.tag === 0xa0 ? 1 : 0
  const wrapper = fields.find((f) => f.tag === 0xa3)
  const list = wrapper ? exactly(der, wrapper, 1)[0] : undefined
  const extensions = (list ? children(der, expect(list, 0x30, 'Extensions')) : []).map((ext) => {
    const parts = exactly(der, expect(ext, 0x30, 'Extension'), 2, 3)
    const id = slice(der, expect(parts[0], 0x06, 'extnID')).toString('hex')
    return { id, value: Buffer.from(content(der, expect(parts[parts.length - 1], 0x04, 'extnValue'))) }
  })
  return {
    subject: expect(fields[base + 4], 0x30, 'subject'),
    spki: expect(fields[base + 5], 0x30, 'subjectPublicKeyInfo'),
    extensions,
  }
}

/**
 * certificateNames reads every subject CN (in order, across all RDNs, multi-valued ones included) and the DNS and
 * URI SANs of an X.509 certificate from its DER, so that no printed form (with its escaping rules) stands between
 * the certificate and the identity. Throws PkiError MALFORMED on anything it cannot read exactly.
 */
export function certificateNames(der: Buffer): { commonNames: string[]; dnsNames: string[]; uris: string[] } {
  const { subject, extensions } = certificateParts(der)
  const out = { commonNames: [] as string[], dnsNames: [] as string[], uris: [] as string[] }
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, expect(rdn, 0x31, 'RDN'))) {
      const [type, value] = exactly(der, expect(atv, 0x30, 'AttributeTypeAndValue'), 2)
      if (slice(der, expect(type, 0x06, 'type')).toString('hex') === COMMON_NAME && value)
        out.commonNames.push(decodeDirectoryString(der, value))
    }
  }
  for (const { value } of extensions.filter((e) => e.id === SUBJECT_ALT_NAME)) {
    for (const name of children(value, expect(readOnly(value), 0x30, 'GeneralNames'))) {
      const text = content(value, name).toString('latin1')
      if (name.tag === 0x82) out.dnsNames.push(text)
      else if (name.tag === 0x86) out.uris.push(text)
    }
  }
  return out
}
