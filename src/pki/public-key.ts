import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { bigFrom, ed25519Problem, isOnCurve, P256, P384, type WeierstrassCurve } from './curves.js'
import { bitString, oidHex as hex, NULL, oid, sequence, unsignedInteger } from './der.js'
import { checkDer, content, type Element, exactly, expect, readElement, slice } from './der-reader.js'
import { PkiError } from './errors.js'

const CURVES = new Map<string, { name: 'P-256' | 'P-384'; dotted: string; curve: WeierstrassCurve }>([
  [hex('1.2.840.10045.3.1.7'), { name: 'P-256', dotted: '1.2.840.10045.3.1.7', curve: P256 }],
  [hex('1.3.132.0.34'), { name: 'P-384', dotted: '1.3.132.0.34', curve: P384 }],
])
/** RSA modulus sizes the bridge certifies (the configuration narrows them further). */
const RSA_BITS = new Set([2048, 3072, 4096])
const SMALL_PRIMES = [3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n]
const SMALL_PRIMORIAL = SMALL_PRIMES.reduce((a, b) => a * b, 1n)

/** PublicKeyKind is the family of a checked public key. */
export type PublicKeyKind = 'ec' | 'rsa' | 'ed25519'

/** Canonical is a checked key: its family, the SubjectPublicKeyInfo the bridge encodes, and the key as a JWK. */
interface Canonical {
  readonly kind: PublicKeyKind
  readonly spki: Buffer
  readonly jwk: JsonWebKey
}

const unfit = (message: string): PkiError => new PkiError('KEY_INVALID', message)
const unsupported = (message: string): PkiError => new PkiError('KEY_UNSUPPORTED', message)

function checkEc(der: Buffer, params: Element | undefined, point: Buffer): Canonical {
  if (!params) throw unsupported('an EC key must name its curve (RFC 5480)')
  if (params.tag !== 0x06) throw unsupported('explicit curve parameters are not accepted (RFC 5480)')
  const named = CURVES.get(slice(der, params).toString('hex'))
  if (!named) throw unsupported('only the curves P-256 and P-384 are certified')
  const algorithm = sequence(oid('1.2.840.10045.2.1'), oid(named.dotted))
  const size = named.curve.bytes
  let x: Buffer
  let y: Buffer
  if (point[0] === 0x04 && point.length === 1 + 2 * size) {
    x = point.subarray(1, 1 + size)
    y = point.subarray(1 + size)
  } else if ((point[0] === 0x02 || point[0] === 0x03) && point.length === 1 + size) {
    // compressed: let OpenSSL decompress it, then re-encode it uncompressed
    const jwk = createPublicKey({
      key: sequence(algorithm, bitString(point)),
      format: 'der',
      type: 'spki',
    }).export({ format: 'jwk' })
    x = Buffer.from(jwk.x ?? '', 'base64url')
    y = Buffer.from(jwk.y ?? '', 'base64url')
  } else {
    throw unfit('the EC point must be uncompressed or compressed, of the curve size (no hybrid form)')
  }
  if (!isOnCurve(named.curve, bigFrom(x), bigFrom(y))) throw unfit('the EC point is not on the curve')
  return {
    kind: 'ec',
    spki: sequence(algorithm, bitString(Buffer.concat([Buffer.from([4]), x, y]))),
    jwk: { kty: 'EC', crv: named.name, x: x.toString('base64url'), y: y.toString('base64url') },
  }
}

function checkRsa(_der: Buffer, params: Element | undefined, bits: Buffer): Canonical {
  if (params?.tag !== 0x05) throw new PkiError('MALFORMED', 'rsaEncryption parameters must be NULL')
  const inner = readElement(bits)
  if (inner.end !== bits.length) throw new PkiError('MALFORMED', 'bytes after RSAPublicKey')
  checkDer(bits, inner)
  const [nEl, eEl] = exactly(bits, expect(inner, 0x30, 'RSAPublicKey'), 2)
  const nBytes = content(bits, expect(nEl, 0x02, 'modulus'))
  const eBytes = content(bits, expect(eEl, 0x02, 'exponent'))
  if ((nBytes[0] ?? 0) & 0x80 || (eBytes[0] ?? 0) & 0x80) throw unfit('negative RSA modulus or exponent')
  const modulus = nBytes[0] === 0 ? nBytes.subarray(1) : nBytes
  const n = bigFrom(modulus)
  const e = bigFrom(eBytes)
  const size = n.toString(2).length
  if (!RSA_BITS.has(size)) throw unsupported(`RSA keys of ${size} bits are not certified`)
  if (e < 65537n || !(e & 1n) || e >= n) throw unfit('the RSA exponent must be odd and at least 65537')
  if (!(n & 1n) || gcd(n, SMALL_PRIMORIAL) !== 1n) throw unfit('the RSA modulus has a small factor')
  return {
    kind: 'rsa',
    spki: sequence(
      sequence(oid('1.2.840.113549.1.1.1'), NULL),
      bitString(sequence(unsignedInteger(modulus), unsignedInteger(eBytes))),
    ),
    jwk: { kty: 'RSA', n: modulus.toString('base64url'), e: eBytes.toString('base64url') },
  }
}

function checkEd25519(_der: Buffer, params: Element | undefined, bits: Buffer): Canonical {
  if (params) throw new PkiError('MALFORMED', 'Ed25519 parameters must be absent (RFC 8410)')
  const problem = ed25519Problem(bits)
  if (problem) throw unfit(problem)
  return {
    kind: 'ed25519',
    spki: sequence(sequence(oid('1.3.101.112')), bitString(bits)),
    jwk: { kty: 'OKP', crv: 'Ed25519', x: bits.toString('base64url') },
  }
}

const CHECKS = new Map([
  [hex('1.2.840.10045.2.1'), checkEc],
  [hex('1.2.840.113549.1.1.1'), checkRsa],
  [hex('1.3.101.112'), checkEd25519],
])

function gcd(a: bigint, b: bigint): bigint {
  let [x, y] = [a, b]
  while (y) [x, y] = [y, x % y]
  return x
}

/**
 * checkPublicKey reads a SubjectPublicKeyInfo (already checked as DER) and returns the key only when it is
 * fit to certify, re-encoded canonically (never the device's bytes). Throws PkiError: MALFORMED,
 * KEY_UNSUPPORTED or KEY_INVALID.
 */
export function checkPublicKey(
  der: Buffer,
  spki: Element,
): { kind: PublicKeyKind; spki: Buffer; key: KeyObject } {
  const [algorithm, keyBits] = exactly(der, expect(spki, 0x30, 'SubjectPublicKeyInfo'), 2)
  const [id, params] = exactly(der, expect(algorithm, 0x30, 'AlgorithmIdentifier'), 1, 2)
  const bitsEl = expect(keyBits, 0x03, 'subjectPublicKey')
  if (der[bitsEl.contentStart] !== 0) throw new PkiError('MALFORMED', 'key BIT STRING with unused bits')
  const bits = Buffer.from(content(der, bitsEl).subarray(1))
  const check = CHECKS.get(slice(der, expect(id, 0x06, 'algorithm')).toString('hex'))
  if (!check) throw unsupported('the key type is not certified (P-256, P-384, RSA or Ed25519 only)')
  const canonical = check(der, params, bits)
  try {
    // from the parsed components (JWK): several times faster than OpenSSL's SPKI decoder
    return { ...canonical, key: createPublicKey({ key: canonical.jwk, format: 'jwk' }) }
  } catch (cause) {
    throw new PkiError('KEY_INVALID', 'the key does not load', { cause })
  }
}
