import { createPublicKey } from 'node:crypto'
import {
  bits,
  type CsrParts,
  csrFrom,
  ctx,
  defaultParts,
  type FixtureKey,
  int,
  type KeyName,
  NULL,
  OID,
  octets,
  oid,
  seq,
  set,
} from './csr-forge.js'

/** Expectation is the bridge's PKI reason (or 'accept'), and whether openssl accepts the request. */
export interface CorpusEntry {
  readonly name: string
  readonly bridge: string
  /** true/false: what `openssl req -verify` says; undefined where the input is not a DER request at all. */
  readonly openssl: boolean | undefined
  readonly input: Buffer | string
}

/** Add records one corpus entry. */
export type Add = (name: string, bridge: string, openssl: boolean | undefined, input: Buffer | string) => void

/** Corpus holds the keys and encodings the generators share. */
export interface Corpus {
  readonly k: Record<KeyName, FixtureKey>
  readonly p256: FixtureKey
  readonly rsa: FixtureKey
  readonly ed: FixtureKey
  readonly good: Buffer
  readonly info: Buffer
  readonly sig: Buffer
  readonly point: Buffer
  readonly n: Buffer
  readonly e: Buffer
  readonly e3: FixtureKey
  readonly rsa1024: FixtureKey
  readonly k1: FixtureKey
  readonly explicit: Buffer
  readonly compressed: Buffer
  readonly offCurve: Buffer
}

export const withSan = (key: FixtureKey, names: Buffer): CsrParts => ({
  ...defaultParts(key),
  attributes: ctx(0, seq(oid(OID.extensionRequest), set(seq(seq(oid(OID.san), octets(names)))))),
})
export const withExtensions = (key: FixtureKey, ...exts: Buffer[]): CsrParts => ({
  ...defaultParts(key),
  attributes: ctx(0, seq(oid(OID.extensionRequest), set(seq(...exts)))),
})
/** resigned replaces the outer algorithm while signing as the key does. */
export const withAlg = (key: FixtureKey, sigAlg: Buffer, digest = key.digest): Buffer =>
  csrFrom(key, { ...defaultParts(key), sigAlg }, digest)
/** withSpki puts another SubjectPublicKeyInfo in the request, still signed by the fixture key. */
export const withSpki = (key: FixtureKey, spki: Buffer): Buffer =>
  csrFrom(key, { ...defaultParts(key), spki })
export const ecSpki = (curve: string, point: Buffer): Buffer =>
  seq(seq(oid(OID.ecPublicKey), oid(curve)), bits(point))
export const rsaSpki = (n: Buffer, e: Buffer, params: Buffer[] = [NULL]): Buffer =>
  seq(seq(oid(OID.rsa), ...params), bits(seq(int(n), int(e))))
export const edSpki = (key: Buffer, params: Buffer[] = []): Buffer =>
  seq(seq(oid(OID.ed25519), ...params), bits(key))
export const uncompressedPoint = (key: FixtureKey): Buffer => key.spki.subarray(key.spki.length - 65)
export const rsaParts = (key: FixtureKey): { n: Buffer; e: Buffer } => {
  const jwk = createPublicKey(key.privateKey).export({ format: 'jwk' })
  return {
    n: Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n ?? '', 'base64url')]),
    e: Buffer.from(jwk.e ?? '', 'base64url'),
  }
}

/** multipleOf3 turns a modulus into an odd multiple of 3 of the same size. */
export function multipleOf3(n: Buffer): Buffer {
  const v = BigInt(`0x${n.toString('hex')}`)
  let m = v - (v % 3n)
  if (!(m & 1n)) m -= 3n
  return Buffer.from(`00${m.toString(16).padStart((n.length - 1) * 2, '0')}`, 'hex')
}
