import { type KeyObject, verify } from 'node:crypto'
import { oidHex as hex } from './der.js'
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
import { malformed, PkiError } from './errors.js'
import { decodeDirectoryString } from './names.js'
import { canonicalBase64, fromPemStrict } from './pem.js'
import { checkPublicKey, type PublicKeyKind } from './public-key.js'

const MAX_CSR_BYTES = 8192
const OIDS = {
  commonName: hex('2.5.4.3'),
  extensionRequest: hex('1.2.840.113549.1.9.14'),
  basicConstraints: hex('2.5.29.19'),
  keyUsage: hex('2.5.29.15'),
  subjectAltName: hex('2.5.29.17'),
  nameConstraints: hex('2.5.29.30'),
}
/**
 * Signature algorithms a CSR may use: the key family they fit and the digest. Parameters must be absent (ECDSA:
 * RFC 5758 3.2; Ed25519: RFC 8410 3), except that RSA's may be NULL (RFC 4055 5: NULL, and absent accepted too).
 */
const SIGNATURE_ALGORITHMS = new Map<string, { kind: PublicKeyKind; digest: string | null }>([
  [hex('1.2.840.10045.4.3.2'), { kind: 'ec', digest: 'sha256' }],
  [hex('1.2.840.10045.4.3.3'), { kind: 'ec', digest: 'sha384' }],
  [hex('1.2.840.10045.4.3.4'), { kind: 'ec', digest: 'sha512' }],
  [hex('1.2.840.113549.1.1.11'), { kind: 'rsa', digest: 'sha256' }],
  [hex('1.2.840.113549.1.1.12'), { kind: 'rsa', digest: 'sha384' }],
  [hex('1.2.840.113549.1.1.13'), { kind: 'rsa', digest: 'sha512' }],
  [hex('1.3.101.112'), { kind: 'ed25519', digest: null }],
])

/** ParsedCsr is a PKCS#10 request whose structure, key and signature have been checked. */
export interface ParsedCsr {
  readonly der: Buffer
  readonly commonNames: readonly string[]
  readonly publicKey: KeyObject
  /** The SubjectPublicKeyInfo re-encoded by the bridge from the parsed key (never the device's bytes). */
  readonly spki: Buffer
  /** True when the request asks for CA powers (basicConstraints cA, keyCertSign/cRLSign, name constraints). */
  readonly requestsCaPowers: boolean
  /** Requested SANs: DNS names and URIs, and how many names of any other kind (IP, e-mail, …). */
  readonly subjectAltNames: { readonly dnsNames: string[]; readonly uris: string[]; readonly others: number }
}

/** csrDer accepts a CSR as PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or as base64 DER. */
export function csrDer(text: string): Buffer {
  if (text.includes('-----BEGIN')) {
    const blocks = fromPemStrict(text).filter(
      (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
    )
    if (blocks.length !== 1 || !blocks[0]) throw malformed('expected exactly one CERTIFICATE REQUEST block')
    return blocks[0].der
  }
  const der = canonicalBase64(text.replace(/\s+/g, ''))
  if (!der?.length) throw malformed('csr is neither PEM nor canonical base64 DER')
  return der
}

/** Extension is one requested extension: its extnID as OID hex, and its extnValue. */
interface Extension {
  readonly id: string
  readonly value: Buffer
}

/** csrExtensions reads the extensions a CSR (DER) requests, as strictly as parseCsr, without the key or signature. */
export function csrExtensions(der: Buffer): Extension[] {
  const [info] = exactly(der, expect(readOnly(der), 0x30, 'CertificationRequest'), 3)
  return readExtensions(der, exactly(der, expect(info, 0x30, 'info'), 4)[3] as Element)
}

function readSubject(der: Buffer, subject: Element): string[] {
  const commonNames: string[] = []
  for (const rdn of children(der, expect(subject, 0x30, 'Name'))) {
    const atvs = children(der, expect(rdn, 0x31, 'RelativeDistinguishedName'))
    if (atvs.length === 0) throw malformed('empty RelativeDistinguishedName')
    for (const atv of atvs) {
      const [type, value] = exactly(der, expect(atv, 0x30, 'AttributeTypeAndValue'), 2)
      const id = slice(der, expect(type, 0x06, 'attribute type')).toString('hex')
      if (id === OIDS.commonName && value) commonNames.push(decodeDirectoryString(der, value))
    }
  }
  return commonNames
}

function readExtensions(der: Buffer, attributes: Element): Extension[] {
  const extensions: Extension[] = []
  let seenRequest = false
  for (const attribute of children(der, expect(attributes, 0xa0, 'attributes'))) {
    const [type, values] = exactly(der, expect(attribute, 0x30, 'Attribute'), 2)
    const list = children(der, expect(values, 0x31, 'attribute values'))
    if (list.length === 0) throw malformed('attribute without values')
    if (slice(der, expect(type, 0x06, 'attribute type')).toString('hex') !== OIDS.extensionRequest) continue
    if (seenRequest || list.length !== 1) throw malformed('more than one extensionRequest')
    seenRequest = true
    const exts = children(der, expect(list[0], 0x30, 'Extensions'))
    if (exts.length === 0) throw malformed('empty Extensions')
    for (const ext of exts) {
      const parts = exactly(der, expect(ext, 0x30, 'Extension'), 2, 3)
      // DER: critical DEFAULT FALSE is present only when TRUE
      if (parts.length === 3 && slice(der, expect(parts[1], 0x01, 'critical')).toString('hex') !== '0101ff')
        throw malformed('critical must be omitted when false')
      const id = slice(der, expect(parts[0], 0x06, 'extnID')).toString('hex')
      if (extensions.some((e) => e.id === id)) throw malformed('duplicate extension')
      const value = Buffer.from(content(der, expect(parts[parts.length - 1], 0x04, 'extnValue')))
      readOnly(value)
      extensions.push({ id, value })
    }
  }
  return extensions
}

function requestsCaPowers(extensions: readonly Extension[]): boolean {
  return extensions.some(({ id, value }) => {
    if (id === OIDS.basicConstraints) {
      const [first] = exactly(value, expect(readElement(value), 0x30, 'BasicConstraints'), 0, 2)
      return first?.tag === 0x01 && value[first.contentStart] !== 0
    }
    // keyUsage BIT STRING: keyCertSign is bit 5 (0x04) and cRLSign bit 6 (0x02) of the first octet
    if (id === OIDS.keyUsage)
      return ((value[expect(readElement(value), 0x03, 'KeyUsage').contentStart + 1] ?? 0) & 0x06) !== 0
    return id === OIDS.nameConstraints
  })
}

const GENERAL_NAME_TAGS = new Set([0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, 0x86, 0x87, 0x88])
const ASCII = /^[\x20-\x7e]*$/

function subjectAltNames(extensions: readonly Extension[]): ParsedCsr['subjectAltNames'] {
  const out = { dnsNames: [] as string[], uris: [] as string[], others: 0 }
  for (const { value } of extensions.filter((e) => e.id === OIDS.subjectAltName)) {
    const names = children(value, expect(readElement(value), 0x30, 'GeneralNames'))
    if (names.length === 0) throw malformed('empty subjectAltName')
    for (const name of names) {
      if (!GENERAL_NAME_TAGS.has(name.tag)) throw malformed('unknown GeneralName')
      const text = content(value, name).toString('latin1')
      if ((name.tag === 0x82 || name.tag === 0x86) && !ASCII.test(text))
        throw malformed('non-ASCII IA5String')
      if (name.tag === 0x82) out.dnsNames.push(text)
      else if (name.tag === 0x86) out.uris.push(text)
      else out.others++
    }
  }
  return out
}

function checkSignatureAlgorithm(der: Buffer, algorithm: Element, kind: PublicKeyKind): string | null {
  const [id, params] = exactly(der, expect(algorithm, 0x30, 'signatureAlgorithm'), 1, 2)
  const known = SIGNATURE_ALGORITHMS.get(slice(der, expect(id, 0x06, 'algorithm')).toString('hex'))
  if (!known)
    throw new PkiError('SIGNATURE_ALGORITHM_UNSUPPORTED', 'the CSR signature algorithm is not accepted')
  if (known.kind !== kind)
    throw new PkiError('SIGNATURE_ALGORITHM_MISMATCH', 'the signature algorithm does not fit the key')
  if (params && (known.kind !== 'rsa' || params.tag !== 0x05))
    throw new PkiError('SIGNATURE_ALGORITHM_MISMATCH', 'signature algorithm parameters are not allowed')
  return known.digest
}

/**
 * parseCsr reads a CSR (RFC 2986) as strict DER, checks that its key is fit to certify and that its
 * self-signature verifies with an algorithm that fits the key. Every refusal is a PkiError.
 */
export function parseCsr(text: string): ParsedCsr {
  const der = csrDer(text)
  if (der.length > MAX_CSR_BYTES) throw new PkiError('TOO_LARGE', `CSR is larger than ${MAX_CSR_BYTES} bytes`)
  const top = readOnly(der)
  const [info, algorithm, signature] = exactly(der, expect(top, 0x30, 'CertificationRequest'), 3)
  const [version, subject, spki, attributes] = exactly(der, expect(info, 0x30, 'info'), 4)
  if (!slice(der, expect(version, 0x02, 'version')).equals(Buffer.from([2, 1, 0])))
    throw malformed('CSR version must be 0')
  const commonNames = readSubject(der, subject as Element)
  const extensions = readExtensions(der, attributes as Element)
  const caPowers = requestsCaPowers(extensions)
  const names = subjectAltNames(extensions)
  const key = checkPublicKey(der, spki as Element)
  const digest = checkSignatureAlgorithm(der, algorithm as Element, key.kind)
  const sig = expect(signature, 0x03, 'signature')
  if (der[sig.contentStart] !== 0) throw malformed('signature BIT STRING with unused bits')
  let valid: boolean
  try {
    valid = verify(digest, slice(der, info as Element), key.key, der.subarray(sig.contentStart + 1, sig.end))
  } catch {
    valid = false
  }
  if (!valid) throw new PkiError('SIGNATURE_INVALID', 'CSR signature does not verify')
  return {
    der,
    commonNames,
    publicKey: key.key,
    spki: key.spki,
    requestsCaPowers: caPowers,
    subjectAltNames: names,
  }
}
