/**
 * Point checks for the curves the bridge certifies, in BigInt arithmetic: a few field multiplications, done
 * before any key is certified (RFC 5480 for P-256/P-384; for Ed25519 the small-order list and canonical y).
 */

/** WeierstrassCurve is a short-Weierstrass curve y² = x³ - 3x + b over GF(p). */
export interface WeierstrassCurve {
  readonly p: bigint
  readonly b: bigint
  readonly bytes: number
}

/** P256 is NIST P-256 (prime256v1), FIPS 186-4. */
export const P256: WeierstrassCurve = {
  p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  bytes: 32,
}
/** P384 is NIST P-384 (secp384r1). */
export const P384: WeierstrassCurve = {
  p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
  b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  bytes: 48,
}

const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m

/** bigFrom reads an unsigned big-endian integer. */
export const bigFrom = (bytes: Buffer): bigint => (bytes.length ? BigInt(`0x${bytes.toString('hex')}`) : 0n)

/** isOnCurve tells whether (x, y) is an affine point of the curve with both coordinates reduced. */
export function isOnCurve(curve: WeierstrassCurve, x: bigint, y: bigint): boolean {
  const { p, b } = curve
  if (x >= p || y >= p) return false
  return mod(y * y - (x * x * x - 3n * x + b), p) === 0n
}

const ED_P = 2n ** 255n - 19n

/**
 * Encodings of the points of order 1, 2, 4 and 8 (and of y = p, p + 1, their non-canonical twins), as listed
 * by libsodium; compared with the sign bit cleared.
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => Buffer.from(h, 'hex'))

/** ed25519Problem says what is wrong with an Ed25519 public key encoding, or undefined when it is fit. */
export function ed25519Problem(key: Buffer): string | undefined {
  if (key.length !== 32) return 'an Ed25519 key is 32 bytes'
  const cleared = Buffer.from(key)
  cleared[31] = (cleared[31] ?? 0) & 0x7f
  if (SMALL_ORDER.some((s) => s.equals(cleared))) return 'the Ed25519 key is a point of small order'
  const y = bigFrom(Buffer.from(cleared).reverse())
  if (y >= ED_P) return 'the Ed25519 key is not canonically encoded'
  // a point off the curve does not decode, so the CSR's signature check refuses it (and costs no BigInt here)
  return undefined
}
