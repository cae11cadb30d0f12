/**
 * A seeded mutation fuzzer for CSRs (independent of src/): the same seed gives the same mutations. Half of the
 * mutants change raw bytes of a signed request; the other half change CertificationRequestInfo and sign it
 * again, so that the reader's strictness (not the signature) is what refuses them.
 */
import { bits, csrFrom, defaultParts, type FixtureKey, infoOf, seq, signInfo } from './csr-forge.js'

/** seededRandom is mulberry32: a small deterministic PRNG returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0xff, 0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0xa0]

/** mutate applies 1–3 seeded edits: bit flips, interesting bytes, deletions, insertions, truncations, copies. */
export function mutate(input: Buffer, random: () => number): Buffer {
  let out = Buffer.from(input)
  const pick = (n: number): number => Math.floor(random() * n)
  const edits = 1 + pick(3)
  for (let i = 0; i < edits && out.length > 2; i++) {
    const at = pick(out.length)
    switch (pick(6)) {
      case 0:
        out[at] = (out[at] ?? 0) ^ (1 << pick(8))
        break
      case 1:
        out[at] = INTERESTING[pick(INTERESTING.length)] ?? 0
        break
      case 2:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + pick(4))])
        break
      case 3:
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from([INTERESTING[pick(INTERESTING.length)] ?? 0]),
          out.subarray(at),
        ])
        break
      case 4:
        out = out.subarray(0, at)
        break
      default: {
        const from = pick(out.length)
        const len = 1 + pick(8)
        out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + len), out.subarray(at)])
      }
    }
  }
  return out
}

/** Mutant is one fuzz input with a name that says how to make it again. */
export interface Mutant {
  readonly name: string
  readonly der: Buffer
}

/** mutants makes `count` seeded mutants of a valid CSR of `key`. */
export function mutants(key: FixtureKey, count: number, seed: number): Mutant[] {
  const random = seededRandom(seed)
  const parts = defaultParts(key)
  const base = csrFrom(key, parts)
  const info = infoOf(parts)
  const out: Mutant[] = []
  for (let i = 0; i < count; i++) {
    const name = `${key.name}#${i} (seed ${seed})`
    if (random() < 0.5) {
      out.push({ name: `${name} raw`, der: mutate(base, random) })
    } else {
      const changed = mutate(info, random)
      out.push({ name: `${name} re-signed`, der: seq(changed, parts.sigAlg, bits(signInfo(key, changed))) })
    }
  }
  return out
}
