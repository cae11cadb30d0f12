import { beforeAll, describe, expect, it } from 'vitest'
import { buildCorpus, type CorpusEntry } from '../../support/csr-corpus.js'
import { opensslReqVerify } from '../../support/openssl-batch.js'
import { createDifferential, type Differential, derOf, outcomeOf } from './differential.js'

let corpus: CorpusEntry[]
let differential: Differential
beforeAll(async () => {
  corpus = buildCorpus()
  differential = await createDifferential()
})

describe('the named CSR corpus', () => {
  it('has at least 40 generators of malformed or degenerate requests, each with its own name', () => {
    expect(corpus.filter((c) => c.bridge !== 'accept').length).toBeGreaterThanOrEqual(40)
    expect(new Set(corpus.map((c) => c.name)).size).toBe(corpus.length)
  })

  it('gives each entry the documented refusal, and openssl the opinion recorded for it', async () => {
    const ders = corpus.map((c) => derOf(c.input))
    const withDer = corpus.filter((_, i) => ders[i] !== undefined && corpus[i]?.openssl !== undefined)
    const verdicts = await opensslReqVerify(withDer.map((c) => derOf(c.input) as Buffer))
    const seen = corpus.map((c) => {
      const j = withDer.indexOf(c)
      return { name: c.name, bridge: outcomeOf(c.input).reason, openssl: j < 0 ? undefined : verdicts[j] }
    })
    expect(seen).toEqual(corpus.map((c) => ({ name: c.name, bridge: c.bridge, openssl: c.openssl })))
  })

  it('issues, for every accepted entry, a certificate that passes openssl verify -x509_strict with the same key', async () => {
    const accepted = corpus.flatMap((c) => {
      const o = outcomeOf(c.input)
      return o.csr ? [{ name: c.name, der: o.csr.der, csr: o.csr }] : []
    })
    expect(accepted.length).toBeGreaterThanOrEqual(8)
    expect(await differential.checkAccepted(accepted)).toEqual([])
  })
})
