import { type KeyObject, randomBytes, sign } from 'node:crypto'
import { isIP } from 'node:net'
import {
  bitString,
  boolean,
  explicit,
  octetString,
  oid,
  sequence,
  set,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der.js'
import { keyIdentifier, type SignatureScheme } from './keys.js'

/** KeyUsageName names a keyUsage bit (RFC 5280 4.2.1.3). */
export type KeyUsageName = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign'
type ExtKeyUsageName = 'clientAuth' | 'serverAuth'

const KEY_USAGE_BITS: Record<KeyUsageName, number> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
}
const EKU_OIDS: Record<ExtKeyUsageName, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
}

/** CertificateProfile is everything the issuer decides about a certificate; nothing comes from the CSR but the key. */
export interface CertificateProfile {
  readonly commonName: string
  readonly organization?: string
  readonly dnsNames?: readonly string[]
  readonly uris?: readonly string[]
  readonly ipAddresses?: readonly string[]
  readonly isCa?: boolean
  readonly pathLength?: number
  readonly keyUsage: readonly KeyUsageName[]
  readonly extKeyUsage?: readonly ExtKeyUsageName[]
  readonly notBefore: Date
  readonly notAfter: Date
}

/** Signer is the issuing side: its subject DER, key identifier, key and signature scheme. */
export interface Signer {
  readonly subject: Buffer
  readonly keyIdentifier: Buffer
  readonly key: KeyObject
  readonly scheme: SignatureScheme
}

/** encodeName builds a Name with an optional O and a CN, in that order. */
export function encodeName(commonName: string, organization?: string): Buffer {
  const rdn = (type: string, value: string): Buffer => set(sequence(oid(type), utf8String(value)))
  return sequence(...(organization ? [rdn('2.5.4.10', organization)] : []), rdn('2.5.4.3', commonName))
}

/** extension encodes an X.509 Extension (critical is left out when false, as DER asks). */
export function extension(id: string, value: Buffer, critical = false): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value))
}

/** signed wraps a to-be-signed structure (certificate, CRL or CSR info) with the algorithm and signature. */
export function signed(tbs: Buffer, key: KeyObject, scheme: SignatureScheme): Buffer {
  return sequence(tbs, scheme.algorithmIdentifier, bitString(sign(scheme.digest, tbs, key)))
}

function keyUsageValue(names: readonly KeyUsageName[]): Buffer {
  let bits = 0
  for (const name of names) bits |= 0x8000 >> KEY_USAGE_BITS[name]
  const bytes = bits & 0xff ? Buffer.from([bits >> 8, bits & 0xff]) : Buffer.from([bits >> 8])
  const last = bytes[bytes.length - 1] ?? 0
  let unused = 0
  while (unused < 7 && !(last & (1 << unused))) unused++
  return bitString(bytes, unused)
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number))
  const [head = '', tail = ''] = ip.split('::')
  const groups = (s: string): string[] => (s ? s.split(':') : [])
  const missing = 8 - groups(head).length - groups(tail).length
  const all = [...groups(head), ...Array<string>(ip.includes('::') ? missing : 0).fill('0'), ...groups(tail)]
  return Buffer.from(all.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]))
}

/** generalNames encodes the GeneralNames of a subjectAltName, or undefined when there are none. */
export function generalNames(
  profile: Pick<CertificateProfile, 'dnsNames' | 'uris' | 'ipAddresses'>,
): Buffer | undefined {
  const names = [
    ...(profile.dnsNames ?? []).map((n) => tlv(0x82, Buffer.from(n, 'ascii'))),
    ...(profile.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
    ...(profile.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ]
  return names.length ? sequence(...names) : undefined
}

function extensions(profile: CertificateProfile, spki: Buffer, authorityKeyId: Buffer): Buffer {
  const basic = profile.isCa
    ? sequence(
        boolean(true),
        ...(profile.pathLength === undefined ? [] : [unsignedInteger(profile.pathLength)]),
      )
    : sequence()
  const san = generalNames(profile)
  const list = [
    extension('2.5.29.19', basic, true),
    extension('2.5.29.15', keyUsageValue(profile.keyUsage), true),
    ...(profile.extKeyUsage?.length
      ? [extension('2.5.29.37', sequence(...profile.extKeyUsage.map((e) => oid(EKU_OIDS[e]))))]
      : []),
    // [RFC 5280 4.2.1.6] SAN is critical when the subject is empty; ours never is.
    ...(san ? [extension('2.5.29.17', san)] : []),
    extension('2.5.29.14', octetString(keyIdentifier(spki))),
    extension('2.5.29.35', sequence(tlv(0x80, authorityKeyId))),
  ]
  return explicit(3, sequence(...list))
}

/** randomSerial makes a positive 128-bit serial number (RFC 5280 4.1.2.2: at most 20 octets, positive). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16)
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01
  return serial
}

/** buildCertificate assembles the TBSCertificate in DER and signs it with the signer's key. */
export function buildCertificate(
  profile: CertificateProfile,
  spki: Buffer,
  signer: Signer,
): { der: Buffer; serialNumber: string } {
  const serial = randomSerial()
  const tbs = sequence(
    explicit(0, unsignedInteger(2)),
    unsignedInteger(serial),
    signer.scheme.algorithmIdentifier,
    signer.subject,
    sequence(time(profile.notBefore), time(profile.notAfter)),
    encodeName(profile.commonName, profile.organization),
    spki,
    extensions(profile, spki, signer.keyIdentifier),
  )
  return { der: signed(tbs, signer.key, signer.scheme), serialNumber: serial.toString('hex') }
}
