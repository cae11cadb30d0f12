import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { RegistrationError } from '../protocol/errors.js'
import { children, type Element, oid, readElement, slice } from './der.js'
import { fromPem } from './pem.js'

const MAX_CSR_BYTES = 8192
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
const hex = (dotted: string): string => oid(dotted).toString('hex')
const OIDS = {
  commonName: hex('2.5.4.3'),
  extensionRequest: hex('1.2.840.113549.1.9.14'),
  basicConstraints: hex('2.5.29.19'),
  keyUsage: hex('2.5.29.15'),
  subjectAltName: hex('2.5.29.17'),
  nameConstraints: hex('2.5.29.30'),
}
/** Signature algorithms a CSR may use, by the hex of their OID encoding: the digest crypto.verify takes. */
const SIGNATURE_DIGESTS = new Map<string, string | null>([
  [hex('1.2.840.10045.4.3.2'), 'sha256'],
  [hex('1.2.840.10045.4.3.3'), 'sha384'],
  [hex('1.2.840.10045.4.3.4'), 'sha512'],
  [hex('1.2.840.113549.1.1.11'), 'sha256'],
  [hex('1.2.840.113549.1.1.12'), 'sha384'],
  [hex('1.2.840.113549.1.1.13'), 'sha512'],
  [hex('1.3.101.112'), null],
])

/** ParsedCsr is a PKCS#10 request whose signature has been verified. */
export interface ParsedCsr {
  readonly der: Buffer
  readonly commonNames: readonly string[]
  readonly publicKey: KeyObject
  readonly spki: Buffer
  /** True when the request asks for CA powers (basicConstraints cA, keyCertSign/cRLSign, name constraints). */
  readonly requestsCaPowers: boolean
  /** Requested SANs: DNS names and URIs, and how many names of any other kind (IP, e-mail, …). */
  readonly subjectAltNames: { readonly dnsNames: string[]; readonly uris: string[]; readonly others: number }
}

/** csrDer accepts a CSR as PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or as base64 DER. */
export function csrDer(text: string): Buffer {
  if (text.includes('-----BEGIN')) {
    const block = fromPem(text).find(
      (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
    )
    if (!block) throw new RegistrationError('CSR_UNREADABLE', 'no CERTIFICATE REQUEST block in the PEM')
    return block.der
  }
  const compact = text.replace(/\s+/g, '')
  if (!BASE64.test(compact))
    throw new RegistrationError('CSR_UNREADABLE', 'csr is neither PEM nor base64 DER')
  return Buffer.from(compact, 'base64')
}

function expect(el: Element | undefined, tag: number): Element {
  if (!el || el.tag !== tag) throw new RangeError(`expected tag 0x${tag.toString(16)}`)
  return el
}

/** directoryString decodes the string types a subject CN may use. */
function directoryString(der: Buffer, el: Element): string {
  const bytes = der.subarray(el.contentStart, el.end)
  switch (el.tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return bytes.toString('utf8')
    case 0x14: // TeletexString, read as Latin-1
      return bytes.toString('latin1')
    case 0x1e: // BMPString, UTF-16BE
      return Buffer.from(bytes).swap16().toString('utf16le')
    default:
      throw new RangeError('unsupported string type in subject')
  }
}

interface DecodedCsr {
  readonly info: Buffer
  readonly commonNames: string[]
  readonly spki: Buffer
  readonly signatureAlgorithm: string
  readonly signature: Buffer
  readonly extensions: { readonly id: string; readonly value: Buffer }[]
}

/** decodeCsr reads the structure of CertificationRequest (RFC 2986) with a strict DER walk. */
function decodeCsr(der: Buffer): DecodedCsr {
  const top = expect(readElement(der), 0x30)
  if (top.end !== der.length) throw new RangeError('trailing bytes after the CSR')
  const [infoEl, algEl, sigEl] = children(der, top)
  const [version, subject, spki, attributes] = children(der, expect(infoEl, 0x30))
  if (!slice(der, expect(version, 0x02)).equals(Buffer.from([2, 1, 0])))
    throw new RangeError('CSR version must be 0')
  const commonNames: string[] = []
  for (const rdn of children(der, expect(subject, 0x30))) {
    for (const atv of children(der, expect(rdn, 0x31))) {
      const [type, value] = children(der, expect(atv, 0x30))
      if (der.subarray(expect(type, 0x06).start, type?.end).toString('hex') === OIDS.commonName && value) {
        commonNames.push(directoryString(der, value))
      }
    }
  }
  const extensions: DecodedCsr['extensions'][number][] = []
  for (const attribute of attributes ? children(der, expect(attributes, 0xa0)) : []) {
    const [type, values] = children(der, expect(attribute, 0x30))
    if (slice(der, expect(type, 0x06)).toString('hex') !== OIDS.extensionRequest) continue
    for (const list of children(der, expect(values, 0x31))) {
      for (const ext of children(der, expect(list, 0x30))) {
        const parts = children(der, expect(ext, 0x30))
        const value = expect(parts[parts.length - 1], 0x04)
        extensions.push({
          id: slice(der, expect(parts[0], 0x06)).toString('hex'),
          value: der.subarray(value.contentStart, value.end),
        })
      }
    }
  }
  const [algorithm] = children(der, expect(algEl, 0x30))
  const signature = expect(sigEl, 0x03)
  return {
    info: slice(der, infoEl as Element),
    commonNames,
    spki: Buffer.from(slice(der, expect(spki, 0x30))),
    signatureAlgorithm: slice(der, expect(algorithm, 0x06)).toString('hex'),
    signature: der.subarray(signature.contentStart + 1, signature.end),
    extensions,
  }
}

function requestsCaPowers(extensions: DecodedCsr['extensions']): boolean {
  return extensions.some(({ id, value }) => {
    if (id === OIDS.basicConstraints) {
      const [first] = children(value, expect(readElement(value), 0x30))
      return first?.tag === 0x01 && value[first.contentStart] !== 0
    }
    // keyUsage BIT STRING: keyCertSign is bit 5 (0x04) and cRLSign bit 6 (0x02) of the first octet
    if (id === OIDS.keyUsage)
      return ((value[expect(readElement(value), 0x03).contentStart + 1] ?? 0) & 0x06) !== 0
    return id === OIDS.nameConstraints
  })
}

function subjectAltNames(extensions: DecodedCsr['extensions']): ParsedCsr['subjectAltNames'] {
  const out = { dnsNames: [] as string[], uris: [] as string[], others: 0 }
  for (const { value } of extensions.filter((e) => e.id === OIDS.subjectAltName)) {
    for (const name of children(value, expect(readElement(value), 0x30))) {
      const text = value.subarray(name.contentStart, name.end).toString('latin1')
      if (name.tag === 0x82) out.dnsNames.push(text)
      else if (name.tag === 0x86) out.uris.push(text)
      else out.others++
    }
  }
  return out
}

/** parseCsr decodes a CSR and verifies its self-signature; every failure is a typed RegistrationError. */
export function parseCsr(text: string): ParsedCsr {
  const der = csrDer(text)
  if (der.length > MAX_CSR_BYTES)
    throw new RegistrationError('CSR_UNREADABLE', `CSR is larger than ${MAX_CSR_BYTES} bytes`)
  let csr: DecodedCsr
  let publicKey: KeyObject
  let caPowers: boolean
  let names: ParsedCsr['subjectAltNames']
  try {
    csr = decodeCsr(der)
    publicKey = createPublicKey({ key: csr.spki, format: 'der', type: 'spki' })
    caPowers = requestsCaPowers(csr.extensions)
    names = subjectAltNames(csr.extensions)
  } catch (cause) {
    throw new RegistrationError('CSR_UNREADABLE', 'CSR is not a readable PKCS#10 request', { cause })
  }
  const digest = SIGNATURE_DIGESTS.get(csr.signatureAlgorithm)
  if (digest === undefined)
    throw new RegistrationError('KEY_NOT_ALLOWED', 'the CSR signature algorithm is not supported')
  let valid: boolean
  try {
    valid = verify(digest, csr.info, publicKey, csr.signature)
  } catch {
    valid = false
  }
  if (!valid) throw new RegistrationError('CSR_SIGNATURE_INVALID', 'CSR signature does not verify')
  return {
    der,
    commonNames: csr.commonNames,
    publicKey,
    spki: csr.spki,
    requestsCaPowers: caPowers,
    subjectAltNames: names,
  }
}
