/**
 * The named CSR corpus: each entry is a small generator named after the rule its output breaks (or, for
 * `accept-…`, a valid variant the bridge must keep accepting), with the PKI reason the bridge gives and what
 * `openssl req -verify` says about it. Built with the independent forge in csr-forge.ts, never with src/.
 */

import { execFileSync } from 'node:child_process'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import {
  bits,
  bool,
  type CsrParts,
  csrFrom,
  ctx,
  defaultParts,
  type FixtureKey,
  fixtureKeys,
  infoOf,
  int,
  keyFrom,
  NULL,
  OID,
  octets,
  oid,
  pem,
  seq,
  set,
  signInfo,
  tlv,
  utf8,
} from './csr-forge.js'

/** Expectation is the bridge's PKI reason (or 'accept'), and whether openssl accepts the request. */
export interface CorpusEntry {
  readonly name: string
  readonly bridge: string
  /** true/false: what `openssl req -verify` says; undefined where the input is not a DER request at all. */
  readonly openssl: boolean | undefined
  readonly input: Buffer | string
}

const withSan = (key: FixtureKey, names: Buffer): CsrParts => ({
  ...defaultParts(key),
  attributes: ctx(0, seq(oid(OID.extensionRequest), set(seq(seq(oid(OID.san), octets(names)))))),
})
const withExtensions = (key: FixtureKey, ...exts: Buffer[]): CsrParts => ({
  ...defaultParts(key),
  attributes: ctx(0, seq(oid(OID.extensionRequest), set(seq(...exts)))),
})
/** resigned replaces the outer algorithm while signing as the key does. */
const withAlg = (key: FixtureKey, sigAlg: Buffer, digest = key.digest): Buffer =>
  csrFrom(key, { ...defaultParts(key), sigAlg }, digest)
/** withSpki puts another SubjectPublicKeyInfo in the request, still signed by the fixture key. */
const withSpki = (key: FixtureKey, spki: Buffer): Buffer => csrFrom(key, { ...defaultParts(key), spki })
const ecSpki = (curve: string, point: Buffer): Buffer =>
  seq(seq(oid(OID.ecPublicKey), oid(curve)), bits(point))
const rsaSpki = (n: Buffer, e: Buffer, params: Buffer[] = [NULL]): Buffer =>
  seq(seq(oid(OID.rsa), ...params), bits(seq(int(n), int(e))))
const edSpki = (key: Buffer, params: Buffer[] = []): Buffer =>
  seq(seq(oid(OID.ed25519), ...params), bits(key))
const uncompressedPoint = (key: FixtureKey): Buffer => key.spki.subarray(key.spki.length - 65)
const rsaParts = (key: FixtureKey): { n: Buffer; e: Buffer } => {
  const jwk = createPublicKey(key.privateKey).export({ format: 'jwk' })
  return {
    n: Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n ?? '', 'base64url')]),
    e: Buffer.from(jwk.e ?? '', 'base64url'),
  }
}

/** multipleOf3 turns a modulus into an odd multiple of 3 of the same size. */
function multipleOf3(n: Buffer): Buffer {
  const v = BigInt(`0x${n.toString('hex')}`)
  let m = v - (v % 3n)
  if (!(m & 1n)) m -= 3n
  return Buffer.from(`00${m.toString(16).padStart((n.length - 1) * 2, '0')}`, 'hex')
}

/** buildCorpus makes every corpus entry (a few keys are generated here: weak RSA, other curves). */
export function buildCorpus(): CorpusEntry[] {
  const k = fixtureKeys()
  const p256 = k['P-256']
  const rsa = k['RSA-2048']
  const ed = k.Ed25519
  const good = csrFrom(p256, defaultParts(p256))
  const info = infoOf(defaultParts(p256))
  const sig = bits(signInfo(p256, info))
  const point = uncompressedPoint(p256)
  const { n, e } = rsaParts(rsa)
  const e3 = keyFrom(
    'RSA-2048',
    generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).privateKey,
  )
  const rsa1024 = keyFrom('RSA-2048', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)
  const k1 = keyFrom('P-256', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey)
  const explicit = execFileSync('openssl', ['ec', '-pubout', '-param_enc', 'explicit', '-outform', 'DER'], {
    input: p256.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    stdio: ['pipe', 'pipe', 'ignore'],
  })
  const compressed = Buffer.concat([Buffer.from([2 + ((point[64] ?? 0) & 1)]), point.subarray(1, 33)])
  const offCurve = Buffer.from(point)
  offCurve[64] = (offCurve[64] ?? 0) ^ 1
  const list: CorpusEntry[] = []
  const add = (name: string, bridge: string, openssl: boolean | undefined, input: Buffer | string): void => {
    list.push({ name, bridge, openssl, input })
  }
  for (const key of Object.values(k))
    add(`accept-${key.name}`, 'accept', true, csrFrom(key, defaultParts(key)))
  add('accept-ec-point-compressed', 'accept', true, withSpki(p256, ecSpki(OID.p256, compressed)))
  add('accept-p256-signed-with-sha384', 'accept', true, withAlg(p256, seq(oid(OID.ecdsaSha384)), 'sha384'))
  add('accept-rsa-algorithm-params-absent', 'accept', true, withAlg(rsa, seq(oid(OID.rsaSha256))))
  add('accept-pem', 'accept', true, pem(good))
  // X.690 DER framing
  add(
    'length-runs-past-parent',
    'MALFORMED',
    false,
    seq(tlv(0x30, info.subarray(2), Buffer.from([info.length - 1])), p256.sigAlg, sig),
  )
  add(
    'non-minimal-length-long-form',
    'MALFORMED',
    undefined,
    Buffer.concat([Buffer.from([0x30, 0x82, 0x00, good[1] ?? 0]), good.subarray(2)]),
  )
  add(
    'non-minimal-length-81',
    'MALFORMED',
    undefined,
    csrFrom(p256, { ...defaultParts(p256), version: Buffer.from([2, 0x81, 1, 0]) }),
  )
  add(
    'indefinite-length',
    'MALFORMED',
    undefined,
    Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]),
  )
  add(
    'length-of-four-octets',
    'MALFORMED',
    false,
    Buffer.concat([Buffer.from([0x30, 0x84, 0, 0, 0, good[1] ?? 0]), good.subarray(2)]),
  )
  add(
    'high-tag-number',
    'MALFORMED',
    false,
    csrFrom(p256, { ...defaultParts(p256), infoTail: Buffer.from([0x1f, 0x21, 0]) }),
  )
  add(
    'primitive-sequence-tag',
    'MALFORMED',
    true,
    csrFrom(p256, { ...defaultParts(p256), subject: tlv(0x10, Buffer.alloc(0)) }),
  )
  add(
    'constructed-bit-string',
    'MALFORMED',
    true,
    seq(info, p256.sigAlg, tlv(0x23, bits(signInfo(p256, info)))),
  )
  add('bytes-after-outer-sequence', 'MALFORMED', true, Buffer.concat([good, Buffer.from([0])]))
  add('element-after-signature', 'MALFORMED', false, seq(info, p256.sigAlg, sig, NULL))
  add(
    'missing-attributes-field',
    'MALFORMED',
    true,
    (() => {
      const p = defaultParts(p256)
      const i = seq(p.version, p.subject, p.spki)
      return seq(i, p.sigAlg, bits(signInfo(p256, i)))
    })(),
  )
  add(
    'element-after-attributes',
    'MALFORMED',
    false,
    csrFrom(p256, { ...defaultParts(p256), infoTail: NULL }),
  )
  add('version-1', 'MALFORMED', true, csrFrom(p256, { ...defaultParts(p256), version: int([1]) }))
  add(
    'version-non-minimal-integer',
    'MALFORMED',
    false,
    csrFrom(p256, { ...defaultParts(p256), version: int([0, 0]) }),
  )
  add(
    'signature-bit-string-unused-bits',
    'MALFORMED',
    false,
    seq(info, p256.sigAlg, bits(Buffer.concat([signInfo(p256, info), Buffer.from([0])]), 1)),
  )
  add(
    'key-bit-string-unused-bits',
    'MALFORMED',
    false,
    withSpki(
      p256,
      seq(seq(oid(OID.ecPublicKey), oid(OID.p256)), bits(Buffer.concat([point, Buffer.from([0])]), 2)),
    ),
  )
  add(
    'oid-non-minimal-arc',
    'MALFORMED',
    false,
    csrFrom(p256, {
      ...defaultParts(p256),
      subject: seq(set(seq(tlv(0x06, Buffer.from([0x55, 0x80, 0x04, 0x03])), utf8('device-1')))),
    }),
  )
  add('empty-rdn', 'MALFORMED', true, csrFrom(p256, { ...defaultParts(p256), subject: seq(set()) }))
  add(
    'attribute-type-and-value-extra-element',
    'MALFORMED',
    false,
    csrFrom(p256, { ...defaultParts(p256), subject: seq(set(seq(oid(OID.cn), utf8('device-1'), NULL))) }),
  )
  add(
    'cn-invalid-utf8',
    'MALFORMED',
    false,
    csrFrom(p256, {
      ...defaultParts(p256),
      subject: seq(set(seq(oid(OID.cn), tlv(0x0c, Buffer.from([0xc3, 0x28]))))),
    }),
  )
  add(
    'cn-octet-string',
    'MALFORMED',
    false,
    csrFrom(p256, {
      ...defaultParts(p256),
      subject: seq(set(seq(oid(OID.cn), octets(Buffer.from('device-1'))))),
    }),
  )
  add(
    'cn-printable-string-with-at-sign',
    'MALFORMED',
    true,
    csrFrom(p256, {
      ...defaultParts(p256),
      subject: seq(set(seq(oid(OID.cn), tlv(0x13, Buffer.from('a@b'))))),
    }),
  )
  add(
    'critical-non-der-boolean',
    'MALFORMED',
    true,
    csrFrom(
      p256,
      withExtensions(p256, seq(oid(OID.keyUsage), bool(0x01), octets(bits(Buffer.from([0x80]), 7)))),
    ),
  )
  add(
    'critical-false-encoded',
    'MALFORMED',
    true,
    csrFrom(
      p256,
      withExtensions(p256, seq(oid(OID.keyUsage), bool(0), octets(bits(Buffer.from([0x80]), 7)))),
    ),
  )
  add(
    'duplicate-extension',
    'MALFORMED',
    true,
    csrFrom(
      p256,
      withExtensions(
        p256,
        seq(oid(OID.keyUsage), octets(bits(Buffer.from([0x80]), 7))),
        seq(oid(OID.keyUsage), octets(bits(Buffer.from([0x80]), 7))),
      ),
    ),
  )
  add(
    'extension-value-trailing-bytes',
    'MALFORMED',
    true,
    csrFrom(
      p256,
      withExtensions(
        p256,
        seq(oid(OID.keyUsage), octets(Buffer.concat([bits(Buffer.from([0x80]), 7), NULL]))),
      ),
    ),
  )
  add(
    'key-usage-unused-bits-not-zero',
    'MALFORMED',
    true,
    csrFrom(p256, withExtensions(p256, seq(oid(OID.keyUsage), octets(bits(Buffer.from([0x81]), 7))))),
  )
  add(
    'empty-extensions',
    'MALFORMED',
    true,
    csrFrom(p256, { ...defaultParts(p256), attributes: ctx(0, seq(oid(OID.extensionRequest), set(seq()))) }),
  )
  add(
    'attribute-without-values',
    'MALFORMED',
    true,
    csrFrom(p256, { ...defaultParts(p256), attributes: ctx(0, seq(oid(OID.challengePassword), set())) }),
  )
  add(
    'two-extension-requests',
    'MALFORMED',
    true,
    csrFrom(p256, {
      ...defaultParts(p256),
      attributes: ctx(
        0,
        seq(
          oid(OID.extensionRequest),
          set(seq(seq(oid(OID.keyUsage), octets(bits(Buffer.from([0x80]), 7))))),
        ),
        seq(oid(OID.extensionRequest), set(seq(seq(oid(OID.san), octets(seq(tlv(0x82, Buffer.from('x')))))))),
      ),
    }),
  )
  add(
    'san-unknown-general-name-tag',
    'MALFORMED',
    true,
    csrFrom(p256, withSan(p256, seq(tlv(0x89, Buffer.from('x'))))),
  )
  add('san-empty', 'MALFORMED', true, csrFrom(p256, withSan(p256, seq())))
  add(
    'san-dns-not-ascii',
    'MALFORMED',
    true,
    csrFrom(p256, withSan(p256, seq(tlv(0x82, Buffer.from('dévice.example', 'utf8'))))),
  )
  // PEM and base64
  add('pem-junk-in-base64', 'MALFORMED', undefined, pem(good).replace(/\n(.{10})/, '\n$1*'))
  add(
    'pem-header-line',
    'MALFORMED',
    undefined,
    pem(good).replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n'),
  )
  add('pem-two-requests', 'MALFORMED', undefined, pem(good) + pem(good))
  add(
    'base64-non-canonical-padding',
    'MALFORMED',
    undefined,
    `${good.toString('base64').replace(/=*$/, '')}A=`,
  )
  add('empty-input', 'MALFORMED', undefined, '')
  // signature algorithms
  add(
    'ecdsa-key-with-rsa-algorithm',
    'SIGNATURE_ALGORITHM_MISMATCH',
    false,
    withAlg(p256, seq(oid(OID.rsaSha256), NULL)),
  )
  add(
    'rsa-key-with-ecdsa-algorithm',
    'SIGNATURE_ALGORITHM_MISMATCH',
    false,
    withAlg(rsa, seq(oid(OID.ecdsaSha256))),
  )
  add(
    'ecdsa-algorithm-with-null-parameters',
    'SIGNATURE_ALGORITHM_MISMATCH',
    true,
    withAlg(p256, seq(oid(OID.ecdsaSha256), NULL)),
  )
  add(
    'ed25519-algorithm-with-parameters',
    'SIGNATURE_ALGORITHM_MISMATCH',
    true,
    withAlg(ed, seq(oid(OID.ed25519), NULL)),
  )
  add(
    'rsa-algorithm-with-non-null-parameters',
    'SIGNATURE_ALGORITHM_MISMATCH',
    true,
    withAlg(rsa, seq(oid(OID.rsaSha256), int([0]))),
  )
  add(
    'rsa-pss-signature',
    'SIGNATURE_ALGORITHM_UNSUPPORTED',
    false,
    withAlg(rsa, seq(oid(OID.rsaPss), seq())),
  )
  add(
    'sha1-with-rsa',
    'SIGNATURE_ALGORITHM_UNSUPPORTED',
    true,
    withAlg(rsa, seq(oid(OID.rsaSha1), NULL), 'sha1'),
  )
  add(
    'ecdsa-with-sha1',
    'SIGNATURE_ALGORITHM_UNSUPPORTED',
    true,
    withAlg(p256, seq(oid(OID.ecdsaSha1)), 'sha1'),
  )
  add(
    'signature-flipped-bit',
    'SIGNATURE_INVALID',
    false,
    (() => {
      const s = signInfo(p256, info)
      s[10] = (s[10] ?? 0) ^ 1
      return seq(info, p256.sigAlg, bits(s))
    })(),
  )
  add(
    'signed-by-another-key',
    'SIGNATURE_INVALID',
    false,
    seq(infoOf(defaultParts(p256)), p256.sigAlg, bits(signInfo(k1, info, 'sha256'))),
  )
  // keys
  add('ec-explicit-curve-parameters', 'KEY_UNSUPPORTED', true, withSpki(p256, explicit))
  add('ec-curve-secp256k1', 'KEY_UNSUPPORTED', true, csrFrom(k1, defaultParts(k1)))
  add(
    'ec-curve-parameters-absent',
    'KEY_UNSUPPORTED',
    false,
    withSpki(p256, seq(seq(oid(OID.ecPublicKey)), bits(point))),
  )
  add('ec-point-off-curve', 'KEY_INVALID', false, withSpki(p256, ecSpki(OID.p256, offCurve)))
  add(
    'ec-point-hybrid-form',
    'KEY_INVALID',
    true,
    withSpki(
      p256,
      ecSpki(OID.p256, Buffer.concat([Buffer.from([6 + ((point[64] ?? 0) & 1)]), point.subarray(1)])),
    ),
  )
  add('ec-point-at-infinity', 'KEY_INVALID', false, withSpki(p256, ecSpki(OID.p256, Buffer.from([0]))))
  add(
    'ec-point-p384-size-on-p256',
    'KEY_INVALID',
    false,
    withSpki(p256, ecSpki(OID.p256, k['P-384'].spki.subarray(-97))),
  )
  add('rsa-exponent-3', 'KEY_INVALID', true, csrFrom(e3, defaultParts(e3)))
  add('rsa-exponent-1', 'KEY_INVALID', false, withSpki(rsa, rsaSpki(n, Buffer.from([1]))))
  add('rsa-exponent-even', 'KEY_INVALID', false, withSpki(rsa, rsaSpki(n, Buffer.from([1, 0, 2]))))
  add('rsa-modulus-1024-bits', 'KEY_UNSUPPORTED', true, csrFrom(rsa1024, defaultParts(rsa1024)))
  add('rsa-modulus-small-factor', 'KEY_INVALID', false, withSpki(rsa, rsaSpki(multipleOf3(n), e)))
  add(
    'rsa-modulus-even',
    'KEY_INVALID',
    false,
    withSpki(
      rsa,
      rsaSpki(Buffer.concat([n.subarray(0, -1), Buffer.from([(n[n.length - 1] ?? 0) & 0xfe])]), e),
    ),
  )
  add('rsa-modulus-negative', 'KEY_INVALID', true, withSpki(rsa, rsaSpki(n.subarray(1), e)))
  add('rsa-key-parameters-absent', 'MALFORMED', true, withSpki(rsa, rsaSpki(n, e, [])))
  add(
    'rsa-pss-key',
    'KEY_UNSUPPORTED',
    false,
    withSpki(rsa, seq(seq(oid(OID.rsaPss)), bits(seq(int(n), int(e))))),
  )
  add(
    'ed25519-identity-point',
    'KEY_INVALID',
    false,
    withSpki(ed, edSpki(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]))),
  )
  add(
    'ed25519-small-order-point',
    'KEY_INVALID',
    false,
    withSpki(
      ed,
      edSpki(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex')),
    ),
  )
  add(
    'ed25519-non-canonical-y',
    'KEY_INVALID',
    false,
    withSpki(
      ed,
      edSpki(Buffer.from('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')),
    ),
  )
  add(
    'ed25519-point-off-curve',
    'SIGNATURE_INVALID',
    false,
    withSpki(ed, edSpki(Buffer.from(`02${'00'.repeat(31)}`, 'hex'))),
  )
  add('ed25519-parameters-present', 'MALFORMED', false, withSpki(ed, edSpki(ed.spki.subarray(-32), [NULL])))
  add('ed25519-short-key', 'KEY_INVALID', false, withSpki(ed, edSpki(ed.spki.subarray(-31))))
  add(
    'x25519-key',
    'KEY_UNSUPPORTED',
    false,
    withSpki(ed, seq(seq(oid(OID.x25519)), bits(ed.spki.subarray(-32)))),
  )
  add(
    'larger-than-8-kib',
    'TOO_LARGE',
    undefined,
    csrFrom(p256, {
      ...defaultParts(p256),
      attributes: ctx(0, seq(oid(OID.challengePassword), set(utf8('x'.repeat(9000))))),
    }),
  )
  return list
}
