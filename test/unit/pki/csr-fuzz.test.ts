import { beforeAll, describe, expect, it } from 'vitest'
import type { ParsedCsr } from '../../../src/pki/csr.js'
import { csrFrom, defaultParts, type FixtureKey, fixtureKeys, type KeyName } from '../../support/csr-forge.js'
import { type Mutant, mutants } from '../../support/csr-mutants.js'
import { opensslReqVerify } from '../../support/openssl-batch.js'
import { createDifferential, type Differential, outcomeOf } from './differential.js'

/** The fixed seed: change it only on purpose, and keep the findings it shows. */
const SEED = 20261201
const PER_KEY = 1000
const REFUSED_SAMPLE_EVERY = 25

let differential: Differential
beforeAll(async () => {
  differential = await createDifferential()
})

describe(`seeded CSR fuzz (seed ${SEED}, ${PER_KEY} mutants per key type)`, () => {
  const keys = fixtureKeys()
  const all: { mutant: Mutant; reason: string; csr?: ParsedCsr }[] = []
  const classes = new Map<string, number>()

  it.each(Object.keys(keys) as KeyName[])(
    '%s: every mutant is refused with a PKI reason or parsed, never a crash',
    (name) => {
      const key = keys[name]
      const base = outcomeOf(csrOf(key))
      for (const [i, mutant] of mutants(key, PER_KEY, SEED + i0(name)).entries()) {
        const outcome = outcomeOf(mutant.der) // throws (failing the test) on anything but a PkiError
        all.push({ mutant, ...outcome })
        if (outcome.csr) {
          // a mutant that still parses is classified: it may change names, never the key it certifies
          expect(outcome.csr.spki.equals(base.csr?.spki ?? Buffer.alloc(0)), `${mutant.name} (${i})`).toBe(
            true,
          )
          const kind = classify(outcome.csr, base.csr)
          classes.set(kind, (classes.get(kind) ?? 0) + 1)
        }
      }
    },
  )

  it('for every accepted mutant openssl also accepts it, and the certificate passes -x509_strict', async () => {
    const accepted = all.flatMap((a) => (a.csr ? [{ name: a.mutant.name, der: a.csr.der, csr: a.csr }] : []))
    expect(all.length).toBe(PER_KEY * 5)
    expect(await differential.checkAccepted(accepted)).toEqual([])
    const refused = all.filter((a) => !a.csr)
    const sample = refused.filter((_, i) => i % REFUSED_SAMPLE_EVERY === 0)
    const verdicts = await opensslReqVerify(sample.map((s) => s.mutant.der))
    const byReason = new Map<string, { count: number; opensslAccepts: number }>()
    for (const a of all) {
      const row = byReason.get(a.reason) ?? { count: 0, opensslAccepts: 0 }
      row.count++
      byReason.set(a.reason, row)
    }
    sample.forEach((s, i) => {
      if (verdicts[i]) (byReason.get(s.reason) as { opensslAccepts: number }).opensslAccepts++
    })
    // the classification, for the record (refused mutants openssl accepts are where the bridge is stricter)
    console.info(
      `fuzz: ${all.length} mutants, ${accepted.length} accepted (all accepted by openssl), refused sample of ${sample.length}:`,
      Object.fromEntries(byReason),
      'accepted mutants by class:',
      Object.fromEntries(classes),
    )
    expect(accepted.length).toBeGreaterThan(0)
  })
})

/** classify says what an accepted mutant changed in the request, compared with the valid one it came from. */
function classify(csr: ParsedCsr, base: ParsedCsr | undefined): string {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
  if (!same(csr.commonNames, base?.commonNames)) return 'subject CN changed'
  if (!same(csr.subjectAltNames, base?.subjectAltNames)) return 'requested SANs changed'
  if (csr.requestsCaPowers !== base?.requestsCaPowers) return 'CA powers requested'
  return 'other bytes changed (CN, SANs, key and CA powers as before)'
}

function i0(name: KeyName): number {
  return ['P-256', 'P-384', 'RSA-2048', 'RSA-3072', 'Ed25519'].indexOf(name)
}

const csrOf = (key: FixtureKey): Buffer => csrFrom(key, defaultParts(key))
