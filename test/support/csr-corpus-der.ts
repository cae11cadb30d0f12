import type { Add, Corpus } from './csr-corpus-helpers.js'
import { withExtensions, withSan, withSpki } from './csr-corpus-helpers.js'
import {
  bits,
  bool,
  csrFrom,
  ctx,
  defaultParts,
  int,
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

/** derEntries adds the generators of bad DER framing, structure, names, extensions, PEM and base64. */
export function derEntries(c: Corpus, add: Add): void {
  const { p256, good, info, sig, point } = c
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
    false,
    Buffer.concat([Buffer.from([0x30, 0x82, 0x00, good[1] ?? 0]), good.subarray(2)]),
  )
  add(
    'non-minimal-length-81',
    'MALFORMED',
    true,
    csrFrom(p256, { ...defaultParts(p256), version: Buffer.from([2, 0x81, 1, 0]) }),
  )
  add(
    'indefinite-length',
    'MALFORMED',
    false,
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
}
