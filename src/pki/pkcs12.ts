import {
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  hash,
  pbkdf2,
  randomBytes,
  X509Certificate,
} from 'node:crypto'
import { promisify } from 'node:util'
import { explicit, NULL, octetString, oid, sequence, set, tlv, unsignedInteger } from './der.js'

/**
 * PKCS#12 (RFC 7292) bundles of a private key and its certificates, protected by a password with modern
 * algorithms only, so that OpenSSL 3 reads them without its legacy provider:
 *
 * - the key: a PKCS#8 ShroudedKeyBag, PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC, over the key's
 *   PKCS#8 DER (any key type node reads: ECDSA, Ed25519, RSA);
 * - the certificates: CertBags in an unencrypted SafeContents (`openssl pkcs12 -export -certpbe NONE`):
 *   certificates are public, and encrypting them would cost a second key derivation for no secrecy;
 * - integrity: the MacData with HMAC-SHA256, its key derived as RFC 7292 appendix B.2 says, with SHA-256.
 *
 * The leaf certificate and the key share a localKeyId (SHA-256 of the certificate) and a friendlyName.
 * The DER is written with der.ts (the one DER writer); the cryptography is node's own (OpenSSL).
 */

/**
 * PKCS12_ITERATIONS is the PBKDF2 and MAC iteration count: OpenSSL 3's own default for `pkcs12 -export` (2048),
 * above NIST SP 800-132's minimum of 1000. A bundle is built on the answer path for every answer that asks for
 * one (replays too), and the MAC's key derivation runs on the event loop; docs/protocol.md says why not more.
 */
export const PKCS12_ITERATIONS = 2048

const OID = {
  data: '1.2.840.113549.1.7.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const

/** SALT_BYTES: 128 bits of salt, as NIST SP 800-132 asks (OpenSSL uses 64). */
const SALT_BYTES = 16
const pbkdf2Async = promisify(pbkdf2)

/** Pkcs12Contents is what goes into a bundle. */
export interface Pkcs12Contents {
  /** The private key, PEM (PKCS#8, SEC1 or PKCS#1). */
  readonly privateKeyPem: string
  /** DER of the certificates: the key's certificate first, then the rest of its chain. */
  readonly certificates: readonly Buffer[]
  /** The name a reader shows for the key and its certificate (e.g. the identity). */
  readonly friendlyName: string
}

/** Pkcs12Options tune a bundle; the default is the documented iteration count. */
export interface Pkcs12Options {
  readonly iterations?: number
}

/** buildPkcs12 returns the DER of a PFX holding the key and certificates, protected by `password`. */
export async function buildPkcs12(
  contents: Pkcs12Contents,
  password: string,
  options: Pkcs12Options = {},
): Promise<Buffer> {
  const iterations = options.iterations ?? PKCS12_ITERATIONS
  const [leaf, ...chain] = contents.certificates
  if (!leaf) throw new Error('a PKCS#12 bundle needs the key’s certificate')
  const key = createPrivateKey(contents.privateKeyPem)
  if (!new X509Certificate(leaf).checkPrivateKey(key))
    throw new Error('the key does not match its certificate')
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' })
  const attributes = set(
    attribute(OID.friendlyName, tlv(0x1e, bmpString(contents.friendlyName))),
    attribute(OID.localKeyId, octetString(createHash('sha256').update(leaf).digest())),
  )
  const certBags = [
    safeBag(OID.certBag, certBag(leaf), attributes),
    ...chain.map((der) => safeBag(OID.certBag, certBag(der))),
  ]
  const keyBag = safeBag(OID.pkcs8ShroudedKeyBag, await shroud(pkcs8, password, iterations), attributes)
  const authSafe = sequence(data(sequence(...certBags)), data(sequence(keyBag)))
  return sequence(unsignedInteger(3), data(authSafe), macData(authSafe, password, iterations))
}

/** data is a ContentInfo of type data. */
const data = (content: Buffer): Buffer => sequence(oid(OID.data), explicit(0, octetString(content)))

const attribute = (id: string, value: Buffer): Buffer => sequence(oid(id), set(value))

function safeBag(bagId: string, value: Buffer, attributes?: Buffer): Buffer {
  return sequence(oid(bagId), explicit(0, value), ...(attributes ? [attributes] : []))
}

const certBag = (der: Buffer): Buffer => sequence(oid(OID.x509Certificate), explicit(0, octetString(der)))

/** bmpString is UTF-16BE, as BMPString and the PKCS#12 key derivation's password want it. */
function bmpString(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16()
}

/** shroud encrypts PKCS#8 DER as an EncryptedPrivateKeyInfo: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC. */
async function shroud(pkcs8: Buffer, password: string, iterations: number): Promise<Buffer> {
  const salt = randomBytes(SALT_BYTES)
  const iv = randomBytes(16)
  // PBES2 takes the password's bytes as they are: UTF-8, as OpenSSL does
  const key = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256')
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()])
  const kdf = sequence(
    oid(OID.pbkdf2),
    sequence(octetString(salt), unsignedInteger(iterations), sequence(oid(OID.hmacWithSHA256), NULL)),
  )
  const pbes2 = sequence(oid(OID.pbes2), sequence(kdf, sequence(oid(OID.aes256Cbc), octetString(iv))))
  return sequence(pbes2, octetString(encrypted))
}

/** macData is the PFX's MacData: HMAC-SHA256 over the authenticated safe's content. */
function macData(authSafe: Buffer, password: string, iterations: number): Buffer {
  const salt = randomBytes(SALT_BYTES)
  const key = pkcs12Kdf(password, salt, 3, iterations)
  const mac = createHmac('sha256', key).update(authSafe).digest()
  return sequence(
    sequence(sequence(oid(OID.sha256), NULL), octetString(mac)),
    octetString(salt),
    unsignedInteger(iterations),
  )
}

/**
 * pkcs12Kdf is RFC 7292 appendix B.2 with SHA-256 (u = 32, v = 64), for a key of u bytes (one block A1): the
 * password as a BMPString with a trailing NUL pair; `id` 3 makes a MAC key.
 */
export function pkcs12Kdf(password: string, salt: Buffer, id: number, iterations: number): Buffer {
  const v = 64
  const fill = (bytes: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(bytes.length / v))
    for (let i = 0; i < out.length; i++) out[i] = bytes[i % bytes.length] as number
    return out
  }
  const input = Buffer.concat([
    Buffer.alloc(v, id),
    fill(salt),
    fill(Buffer.concat([bmpString(password), Buffer.alloc(2)])),
  ])
  // crypto.hash, one call per round: a quarter of createHash's cost, which matters on the event loop
  let a = hash('sha256', input, 'buffer')
  for (let i = 1; i < iterations; i++) a = hash('sha256', a, 'buffer')
  return a
}
