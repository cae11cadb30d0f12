import { createHash, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { untilAborted } from '../common/abortable.js'
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../protocol/messages.js'
import { NULL, oid, sequence } from './der.js'
import { children, readElement } from './der-reader.js'

const generateKeyPairAsync = promisify(generateKeyPair)

/** keyAlgorithmOf names the algorithm of a public or private key, or undefined for any other kind of key. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const type = key.asymmetricKeyType
  const { namedCurve: curve, modulusLength: bits } = key.asymmetricKeyDetails ?? {}
  if (type === 'ed25519') return 'Ed25519'
  if (type === 'ec' && curve === 'prime256v1') return 'ECDSA-P256'
  if (type === 'ec' && curve === 'secp384r1') return 'ECDSA-P384'
  return type === 'rsa' ? KEY_ALGORITHMS.find((a) => a === `RSA-${bits}`) : undefined
}

/** describeKey gives a short human name for any key, for error messages. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails
  return [key.asymmetricKeyType, d?.namedCurve, d?.modulusLength].filter((x) => x !== undefined).join(' ')
}

export interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

/** generateKey makes a key pair on libuv's thread pool, so the event loop never blocks on it. */
export async function generateKey(algorithm: KeyAlgorithm): Promise<KeyPair> {
  if (algorithm === 'Ed25519') return generateKeyPairAsync('ed25519')
  if (algorithm.startsWith('RSA'))
    return generateKeyPairAsync('rsa', { modulusLength: Number(algorithm.slice(4)) })
  return generateKeyPairAsync('ec', { namedCurve: algorithm === 'ECDSA-P256' ? 'P-256' : 'P-384' })
}

/**
 * RSA generation runs on libuv's thread pool (4 threads), which file writes (the registry's sync, the audit log)
 * share: one gateway's batch of RSA-4096 keys would otherwise hold every thread for seconds, slowing every other
 * registration, and a stopping process waits for all queued thread-pool work before it exits. So RSA keys are
 * made one at a time; the waiting ones queue here, where an abort (timeout, shutdown) removes them before they
 * ever reach the thread pool.
 */
let rsaTail: Promise<void> = Promise.resolve()

/** inRsaTurn runs `work` once the RSA generations queued before it are done, unless `signal` aborts first. */
async function inRsaTurn<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  const previous = rsaTail
  let release = (): void => {}
  rsaTail = new Promise((resolve) => {
    release = resolve
  })
  try {
    await untilAborted(previous, signal)
    return await work()
  } finally {
    // an aborted waiter hands its turn on only when the one before it is done
    void previous.then(release)
  }
}

/**
 * generateKeyMaterial makes a key pair, encoded as the embedded CA needs it (SPKI DER, PKCS#8 PEM). ECDSA and
 * Ed25519 keys take about 0.1 ms and are made inline: a thread-pool round trip would cost more than the work.
 * RSA keys take 10 ms to seconds and are made on libuv's thread pool, one at a time (see inRsaTurn).
 */
export async function generateKeyMaterial(
  algorithm: KeyAlgorithm,
  signal?: AbortSignal,
): Promise<{ spki: Buffer; privateKeyPem: string }> {
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const
  if (algorithm.startsWith('RSA')) {
    const modulusLength = Number(algorithm.slice(4))
    return inRsaTurn(signal, async () => {
      const pair = await generateKeyPairAsync('rsa', { modulusLength, publicKeyEncoding, privateKeyEncoding })
      return { spki: pair.publicKey, privateKeyPem: pair.privateKey }
    })
  }
  const pair =
    algorithm === 'Ed25519'
      ? generateKeyPairSync('ed25519', { publicKeyEncoding, privateKeyEncoding })
      : generateKeyPairSync('ec', {
          namedCurve: algorithm === 'ECDSA-P256' ? 'P-256' : 'P-384',
          publicKeyEncoding,
          privateKeyEncoding,
        })
  return { spki: pair.publicKey, privateKeyPem: pair.privateKey }
}

/** SignatureScheme is how a key signs: the digest for crypto.sign and the AlgorithmIdentifier DER. */
export interface SignatureScheme {
  readonly digest: string | null
  readonly algorithmIdentifier: Buffer
}

/** signatureSchemeFor picks the X.509 signature algorithm a CA key signs with. */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  const algorithm = keyAlgorithmOf(key)
  const scheme = (digest: string | null, ...id: Buffer[]) => ({
    digest,
    algorithmIdentifier: sequence(...id),
  })
  if (algorithm === 'ECDSA-P256') return scheme('sha256', oid('1.2.840.10045.4.3.2'))
  if (algorithm === 'ECDSA-P384') return scheme('sha384', oid('1.2.840.10045.4.3.3'))
  if (algorithm === 'Ed25519') return scheme(null, oid('1.3.101.112'))
  if (algorithm) return scheme('sha256', oid('1.2.840.113549.1.1.11'), NULL) // RSA: sha256WithRSAEncryption
  throw new Error(`unsupported signing key: ${describeKey(key)}`)
}

export function spkiDer(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' })
}

/** keyIdentifier computes RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, subjectPublicKey] = children(spki, readElement(spki))
  if (!subjectPublicKey) throw new RangeError('SubjectPublicKeyInfo without a key')
  // skip the unused-bits octet of the BIT STRING
  return createHash('sha1')
    .update(spki.subarray(subjectPublicKey.contentStart + 1, subjectPublicKey.end))
    .digest()
}
