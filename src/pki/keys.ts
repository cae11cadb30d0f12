import { createHash, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { untilAborted } from '../common/abortable.js'
import type { KeyAlgorithm } from '../protocol/messages.js'
import { NULL, oid, sequence } from './der.js'
import { children, readElement } from './der-reader.js'

const generateKeyPairAsync = promisify(generateKeyPair)

/** keyAlgorithmOf names the algorithm of a public or private key, or undefined for any other kind of key. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details?.namedCurve === 'prime256v1') return 'ECDSA-P256'
      if (details?.namedCurve === 'secp384r1') return 'ECDSA-P384'
      return undefined
    case 'ed25519':
      return 'Ed25519'
    case 'rsa': {
      const bits = details?.modulusLength
      if (bits === 2048 || bits === 3072 || bits === 4096) return `RSA-${bits}`
      return undefined
    }
    default:
      return undefined
  }
}

/** describeKey gives a short human name for any key, for error messages. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails
  return [key.asymmetricKeyType, d?.namedCurve, d?.modulusLength].filter((x) => x !== undefined).join(' ')
}

/** KeyPair is a generated key pair. */
export interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

/** generateKey makes a key pair on libuv's thread pool, so the event loop never blocks on it. */
export async function generateKey(algorithm: KeyAlgorithm): Promise<KeyPair> {
  switch (algorithm) {
    case 'ECDSA-P256':
      return generateKeyPairAsync('ec', { namedCurve: 'P-256' })
    case 'ECDSA-P384':
      return generateKeyPairAsync('ec', { namedCurve: 'P-384' })
    case 'Ed25519':
      return generateKeyPairAsync('ed25519')
    case 'RSA-2048':
    case 'RSA-3072':
    case 'RSA-4096':
      return generateKeyPairAsync('rsa', { modulusLength: Number(algorithm.slice(4)) })
  }
}

/** KeyMaterial is a generated key, already encoded: what the embedded CA needs to certify and hand over a key. */
export interface KeyMaterial {
  readonly spki: Buffer
  readonly privateKeyPem: string
}

/**
 * RSA_KEY_GENERATIONS is how many RSA keys are generated at once. RSA generation runs on libuv's thread pool
 * (4 threads), which file writes (the registry's sync, the audit log) share: one gateway's
 * batch of RSA-4096 keys would otherwise hold every thread for seconds, slowing every other registration, and
 * a stopping process waits for all queued thread-pool work before it exits. Waiting generations queue here,
 * where an abort (timeout, shutdown) removes them before they ever reach the thread pool.
 */
export const RSA_KEY_GENERATIONS = 1

let rsaRunning = 0
const rsaWaiting: (() => void)[] = []

/** rsaTurn resolves when an RSA generation may start; it rejects, leaving the queue, if `signal` aborts first. */
function rsaTurn(signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted()
  if (rsaRunning < RSA_KEY_GENERATIONS) {
    rsaRunning++
    return Promise.resolve()
  }
  let turn = (): void => {}
  const granted = new Promise<void>((resolve) => {
    turn = resolve
  })
  rsaWaiting.push(turn)
  return untilAborted(granted, signal, () => {
    const at = rsaWaiting.indexOf(turn)
    if (at >= 0) rsaWaiting.splice(at, 1)
    else rsaDone() // the turn was granted as the abort came: hand it on
  })
}

function rsaDone(): void {
  const next = rsaWaiting.shift()
  if (next) next()
  else rsaRunning--
}

/**
 * generateKeyMaterial makes and encodes a key pair. ECDSA and Ed25519 keys take about 0.1 ms and are made
 * inline: a thread-pool round trip would cost more than the work. RSA keys take 10 ms to seconds and are made
 * on libuv's thread pool, so the event loop never blocks on them, at most RSA_KEY_GENERATIONS at a time; one
 * still waiting for its turn is dropped when `signal` aborts.
 */
export async function generateKeyMaterial(
  algorithm: KeyAlgorithm,
  signal?: AbortSignal,
): Promise<KeyMaterial> {
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const
  if (algorithm.startsWith('RSA')) {
    const modulusLength = Number(algorithm.slice(4))
    await rsaTurn(signal)
    try {
      return await new Promise<KeyMaterial>((resolve, reject) =>
        generateKeyPair(
          'rsa',
          { modulusLength, publicKeyEncoding, privateKeyEncoding },
          (err, spki, privateKeyPem) => (err ? reject(err) : resolve({ spki, privateKeyPem })),
        ),
      )
    } finally {
      rsaDone()
    }
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
  switch (keyAlgorithmOf(key)) {
    case 'ECDSA-P256':
      return { digest: 'sha256', algorithmIdentifier: sequence(oid('1.2.840.10045.4.3.2')) }
    case 'ECDSA-P384':
      return { digest: 'sha384', algorithmIdentifier: sequence(oid('1.2.840.10045.4.3.3')) }
    case 'Ed25519':
      return { digest: null, algorithmIdentifier: sequence(oid('1.3.101.112')) }
    case 'RSA-2048':
    case 'RSA-3072':
    case 'RSA-4096':
      return { digest: 'sha256', algorithmIdentifier: sequence(oid('1.2.840.113549.1.1.11'), NULL) }
    default:
      throw new Error(`unsupported signing key: ${describeKey(key)}`)
  }
}

/** spkiDer exports a public key as SubjectPublicKeyInfo DER. */
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
