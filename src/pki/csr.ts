import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { CertificationRequest } from '@peculiar/asn1-csr'
import { AsnConvert } from '@peculiar/asn1-schema'
import {
  BasicConstraints,
  type Extension,
  Extensions,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  KeyUsage,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509'
import { RegistrationError } from '../protocol/errors.js'
import { signatureDigestForOid } from './keys.js'
import { fromPem } from './pem.js'

const OID_COMMON_NAME = '2.5.4.3'
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14'
const OID_NAME_CONSTRAINTS = '2.5.29.30'
const MAX_CSR_BYTES = 8192
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

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

/** parseCsr decodes a CSR and verifies its self-signature; every failure is a typed RegistrationError. */
export function parseCsr(text: string): ParsedCsr {
  const der = csrDer(text)
  if (der.length > MAX_CSR_BYTES)
    throw new RegistrationError('CSR_UNREADABLE', `CSR is larger than ${MAX_CSR_BYTES} bytes`)
  let request: CertificationRequest
  let publicKey: KeyObject
  let spki: Buffer
  try {
    request = AsnConvert.parse(der, CertificationRequest)
    spki = Buffer.from(AsnConvert.serialize(request.certificationRequestInfo.subjectPKInfo))
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' })
  } catch (cause) {
    throw new RegistrationError('CSR_UNREADABLE', 'CSR is not a readable PKCS#10 request', { cause })
  }
  verifySignature(request, publicKey)
  const info = request.certificationRequestInfo
  const commonNames = [...info.subject].flatMap((rdn) =>
    rdn.filter((atv) => atv.type === OID_COMMON_NAME).map((atv) => atv.value.toString()),
  )
  let extensions: Extension[]
  try {
    extensions = requestedExtensions(request)
  } catch (cause) {
    throw new RegistrationError('CSR_UNREADABLE', 'CSR extension request is not readable', { cause })
  }
  return {
    der,
    commonNames,
    publicKey,
    spki,
    requestsCaPowers: requestsCaPowers(extensions),
    subjectAltNames: subjectAltNames(extensions),
  }
}

function verifySignature(request: CertificationRequest, publicKey: KeyObject): void {
  const digest = signatureDigestForOid(request.signatureAlgorithm.algorithm)
  if (digest === undefined) {
    throw new RegistrationError(
      'KEY_NOT_ALLOWED',
      `CSR signature algorithm ${request.signatureAlgorithm.algorithm} is not supported`,
    )
  }
  const raw = request.certificationRequestInfoRaw
  let valid = false
  try {
    valid = raw !== undefined && verify(digest, Buffer.from(raw), publicKey, Buffer.from(request.signature))
  } catch {
    valid = false
  }
  if (!valid) throw new RegistrationError('CSR_SIGNATURE_INVALID', 'CSR signature does not verify')
}

function requestedExtensions(request: CertificationRequest): Extension[] {
  return request.certificationRequestInfo.attributes
    .filter((a) => a.type === OID_EXTENSION_REQUEST)
    .flatMap((a) => a.values.flatMap((v) => [...AsnConvert.parse(v, Extensions)]))
}

function requestsCaPowers(extensions: Extension[]): boolean {
  return extensions.some((ext) => {
    const value = ext.extnValue.buffer
    if (ext.extnID === id_ce_basicConstraints) return AsnConvert.parse(value, BasicConstraints).cA
    if (ext.extnID === id_ce_keyUsage) {
      const usage = AsnConvert.parse(value, KeyUsage).toNumber()
      return (usage & (32 | 64)) !== 0 // keyCertSign = bit 5, cRLSign = bit 6
    }
    return ext.extnID === OID_NAME_CONSTRAINTS
  })
}

function subjectAltNames(extensions: Extension[]): ParsedCsr['subjectAltNames'] {
  const out = { dnsNames: [] as string[], uris: [] as string[], others: 0 }
  for (const ext of extensions.filter((e) => e.extnID === id_ce_subjectAltName)) {
    for (const name of AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName)) {
      if (name.dNSName !== undefined) out.dnsNames.push(name.dNSName)
      else if (name.uniformResourceIdentifier !== undefined) out.uris.push(name.uniformResourceIdentifier)
      else out.others++
    }
  }
  return out
}
