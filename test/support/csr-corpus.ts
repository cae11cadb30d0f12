/**
 * The named CSR corpus: each entry is a small generator named after the rule its output breaks (or, for
 * `accept-…`, a valid variant the bridge must keep accepting), with the PKI reason the bridge gives and what
 * `openssl req -verify` says about it. Built with the independent forge in csr-forge.ts, never with src/.
 */

import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { derEntries } from './csr-corpus-der.js'
import {
  type Add,
  type Corpus,
  type CorpusEntry,
  ecSpki,
  rsaParts,
  uncompressedPoint,
  withAlg,
  withSpki,
} from './csr-corpus-helpers.js'
import { keyEntries } from './csr-corpus-keys.js'
import {
  bits,
  csrFrom,
  defaultParts,
  fixtureKeys,
  infoOf,
  keyFrom,
  OID,
  oid,
  pem,
  seq,
  signInfo,
} from './csr-forge.js'

export type { CorpusEntry } from './csr-corpus-helpers.js'

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
  const add: Add = (name, bridge, openssl, input) => {
    list.push({ name, bridge, openssl, input })
  }
  for (const key of Object.values(k))
    add(`accept-${key.name}`, 'accept', true, csrFrom(key, defaultParts(key)))
  add('accept-ec-point-compressed', 'accept', true, withSpki(p256, ecSpki(OID.p256, compressed)))
  add('accept-p256-signed-with-sha384', 'accept', true, withAlg(p256, seq(oid(OID.ecdsaSha384)), 'sha384'))
  add('accept-rsa-algorithm-params-absent', 'accept', true, withAlg(rsa, seq(oid(OID.rsaSha256))))
  add('accept-pem', 'accept', true, pem(good))
  const corpus: Corpus = {
    k,
    p256,
    rsa,
    ed,
    good,
    info,
    sig,
    point,
    n,
    e,
    e3,
    rsa1024,
    k1,
    explicit,
    compressed,
    offCurve,
  }
  derEntries(corpus, add)
  keyEntries(corpus, add)
  return list
}
