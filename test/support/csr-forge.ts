/**
 * An independent CSR forge for the differential corpus and fuzz: its own DER writer and its own CSR assembly
 * (never src/), signing with node:crypto, so that what it makes does not depend on the code under test.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** tlv encodes one element; `length` overrides the length octets (to forge bad lengths). */
export const tlv = (tag: number, body: Buffer, length?: Buffer): Buffer =>
  Buffer.concat([Buffer.from([tag]), length ?? lengthBytes(body.length), body])
/** seq, set and ctx encode SEQUENCE, SET and a constructed context tag [n]. */
export const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts))
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts))
export const ctx = (n: number, ...parts: Buffer[]): Buffer => tlv(0xa0 | n, Buffer.concat(parts))
/** NULL, int, utf8, octets, bits encode the primitive types the corpus needs. */
export const NULL = Buffer.from([5, 0])
export const int = (bytes: Buffer | number[]): Buffer => tlv(0x02, Buffer.from(bytes))
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'))
export const octets = (b: Buffer): Buffer => tlv(0x04, b)
export const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]))
export const bool = (v: number): Buffer => Buffer.from([1, 1, v])

/** oid encodes an OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number)
  const out = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0)]
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f]
    for (let r = Math.floor(arc / 128); r > 0; r = Math.floor(r / 128)) chunk.unshift(0x80 | (r & 0x7f))
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

/** OID holds the object identifiers the corpus uses. */
export const OID = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  extensionRequest: '1.2.840.113549.1.9.14',
  challengePassword: '1.2.840.113549.1.9.7',
  san: '2.5.29.17',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  rsa: '1.2.840.113549.1.1.1',
  rsaPss: '1.2.840.113549.1.1.10',
  ed25519: '1.3.101.112',
  x25519: '1.3.101.110',
  ecdsaSha1: '1.2.840.10045.4.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha1: '1.2.840.113549.1.1.5',
  rsaSha256: '1.2.840.113549.1.1.11',
} as const

/** KeyName names a fixture key. */
export type KeyName = 'P-256' | 'P-384' | 'RSA-2048' | 'RSA-3072' | 'Ed25519'

/** FixtureKey is a fixed test key with the signature algorithm a device would use with it. */
export interface FixtureKey {
  readonly name: KeyName
  readonly privateKey: KeyObject
  readonly spki: Buffer
  readonly sigAlg: Buffer
  readonly digest: string | null
}

const FILES: Record<KeyName, string> = {
  'P-256': 'p256.key',
  'P-384': 'p384.key',
  'RSA-2048': 'rsa2048.key',
  'RSA-3072': 'rsa3072.key',
  Ed25519: 'ed25519.key',
}

/** keyFrom describes any private key as a device would sign with it. */
export function keyFrom(name: KeyName, privateKey: KeyObject): FixtureKey {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  if (name === 'Ed25519') return { name, privateKey, spki, sigAlg: seq(oid(OID.ed25519)), digest: null }
  if (name.startsWith('RSA'))
    return { name, privateKey, spki, sigAlg: seq(oid(OID.rsaSha256), NULL), digest: 'sha256' }
  return name === 'P-384'
    ? { name, privateKey, spki, sigAlg: seq(oid(OID.ecdsaSha384)), digest: 'sha384' }
    : { name, privateKey, spki, sigAlg: seq(oid(OID.ecdsaSha256)), digest: 'sha256' }
}

/** fixtureKeys loads the fixed keys of test/fixtures/csr-keys. */
export function fixtureKeys(): Record<KeyName, FixtureKey> {
  const dir = join(import.meta.dirname, '..', 'fixtures', 'csr-keys')
  const entries = (Object.keys(FILES) as KeyName[]).map(
    (name) => [name, keyFrom(name, createPrivateKey(readFileSync(join(dir, FILES[name]))))] as const,
  )
  return Object.fromEntries(entries) as Record<KeyName, FixtureKey>
}

/** CsrParts are the pieces of a CSR, each already encoded, so a generator can replace any one. */
export interface CsrParts {
  version: Buffer
  subject: Buffer
  spki: Buffer
  attributes: Buffer
  sigAlg: Buffer
  /** Extra raw bytes appended inside CertificationRequestInfo. */
  infoTail?: Buffer
}

/** defaultParts is a well-formed request for `cn`, asking for a DNS SAN and digitalSignature. */
export function defaultParts(key: FixtureKey, cn = 'device-1'): CsrParts {
  const extensions = seq(
    seq(oid(OID.san), octets(seq(tlv(0x82, Buffer.from(`${cn}.devices.example`))))),
    seq(oid(OID.keyUsage), bool(0xff), octets(bits(Buffer.from([0x80]), 7))),
  )
  return {
    version: int([0]),
    subject: seq(set(seq(oid(OID.o), utf8('Factory'))), set(seq(oid(OID.cn), utf8(cn)))),
    spki: key.spki,
    attributes: ctx(0, seq(oid(OID.extensionRequest), set(extensions))),
    sigAlg: key.sigAlg,
  }
}

/** infoOf encodes CertificationRequestInfo from its parts. */
export const infoOf = (p: CsrParts): Buffer =>
  seq(p.version, p.subject, p.spki, p.attributes, ...(p.infoTail ? [p.infoTail] : []))

/** signInfo signs encoded info bytes with a key. */
export const signInfo = (key: FixtureKey, info: Buffer, digest = key.digest): Buffer =>
  sign(digest, info, key.privateKey)

/** csrFrom assembles a signed CSR: SEQUENCE { info, algorithm, BIT STRING signature }. */
export function csrFrom(key: FixtureKey, parts: CsrParts, digest = key.digest): Buffer {
  const info = infoOf(parts)
  return seq(info, parts.sigAlg, bits(signInfo(key, info, digest)))
}

/** pem wraps DER as a CERTIFICATE REQUEST PEM block. */
export const pem = (der: Buffer, label = 'CERTIFICATE REQUEST'): string =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .replace(/\n?$/, '\n')}-----END ${label}-----\n`
