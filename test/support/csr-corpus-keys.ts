import type { Add, Corpus } from './csr-corpus-helpers.js'
import { ecSpki, edSpki, multipleOf3, rsaSpki, withAlg, withSpki } from './csr-corpus-helpers.js'
import {
  bits,
  csrFrom,
  ctx,
  defaultParts,
  infoOf,
  int,
  NULL,
  OID,
  oid,
  seq,
  set,
  signInfo,
  utf8,
} from './csr-forge.js'

/** keyEntries adds the generators of bad signature algorithms and keys unfit to certify. */
export function keyEntries(c: Corpus, add: Add): void {
  const { k, p256, rsa, ed, info, point, n, e, e3, rsa1024, k1, explicit, offCurve } = c
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
    true,
    csrFrom(p256, {
      ...defaultParts(p256),
      attributes: ctx(0, seq(oid(OID.challengePassword), set(utf8('x'.repeat(9000))))),
    }),
  )
}
