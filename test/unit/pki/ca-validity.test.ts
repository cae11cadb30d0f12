import { X509Certificate } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LocalCaIssuer } from '../../../src/issuers/local-ca/local-ca-issuer.js'
import { buildCertificate, type CertificateProfile } from '../../../src/pki/certificate.js'
import { generateKey, spkiDer } from '../../../src/pki/keys.js'
import { toPem } from '../../../src/pki/pem.js'
import { loadCa, selfSigner } from '../../../src/pki/signer.js'
import { usableUntil } from '../../../src/pki/validity.js'
import { openssl } from '../../support/tools.js'

const HOUR = 3600_000
const template = { dnsNames: [], uris: [], validityHours: 720 }

async function caValidFor(notBefore: number, notAfter: number) {
  const keys = await generateKey('ECDSA-P256')
  const profile: CertificateProfile = {
    commonName: 'Short CA',
    isCa: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(Math.floor(notBefore / 1000) * 1000),
    notAfter: new Date(Math.floor(notAfter / 1000) * 1000),
  }
  const pem = toPem(
    buildCertificate(profile, spkiDer(keys.publicKey), selfSigner(profile, keys)).der,
    'CERTIFICATE',
  )
  return {
    pem,
    ca: loadCa(pem, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
    profile,
  }
}

const order = { identity: 'device-1', keyAlgorithm: 'ECDSA-P256' as const }

afterEach(() => {
  vi.useRealTimers()
})

describe('certificates never outlive their chain', () => {
  it('caps notAfter at the CA notAfter, says so in the credentials, warns once, and passes -x509_strict', async () => {
    const { ca, pem, profile } = await caValidFor(Date.now() - HOUR, Date.now() + 2 * HOUR)
    const warn = vi.fn()
    const issuer = new LocalCaIssuer({ ca, chainPem: '', template, logger: { warn } as never })
    expect(warn).toHaveBeenCalledTimes(1)
    const a = await issuer.issue(order, new AbortController().signal)
    await issuer.issue(order, new AbortController().signal)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(a.notAfter.getTime()).toBe(profile.notAfter.getTime())
    const cert = new X509Certificate(a.certificatePem)
    expect(new Date(cert.validTo).getTime()).toBe(profile.notAfter.getTime())
    const dir = await mkdtemp(join(tmpdir(), 'mrb-cap-'))
    await writeFile(join(dir, 'ca.pem'), pem)
    await writeFile(join(dir, 'leaf.pem'), a.certificatePem)
    expect(
      await openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')]),
    ).toContain(': OK')
  })

  it('caps at an intermediate that expires before the CA', async () => {
    const { ca } = await caValidFor(Date.now() - HOUR, Date.now() + 100 * HOUR)
    const intermediate = await caValidFor(Date.now() - HOUR, Date.now() + 3 * HOUR)
    const issuer = new LocalCaIssuer({ ca, chainPem: intermediate.pem, template })
    const issued = await issuer.issue(order, new AbortController().signal)
    expect(issued.notAfter.getTime()).toBe(intermediate.profile.notAfter.getTime())
  })

  it('refuses to load a CA that has expired or is not yet valid', async () => {
    const expired = await caValidFor(Date.now() - 10 * HOUR, Date.now() - HOUR)
    expect(() => new LocalCaIssuer({ ca: expired.ca, chainPem: '', template })).toThrow(/expired at/)
    const future = await caValidFor(Date.now() + HOUR, Date.now() + 10 * HOUR)
    expect(() => new LocalCaIssuer({ ca: future.ca, chainPem: '', template })).toThrow(/not valid before/)
  })

  it('is not ready, and refuses to issue, once its CA has expired', async () => {
    const { ca, profile } = await caValidFor(Date.now() - HOUR, Date.now() + HOUR)
    const issuer = new LocalCaIssuer({ ca, chainPem: '', template })
    expect(issuer.isReady()).toBe(true)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(profile.notAfter.getTime() + 1000)
    expect(issuer.isReady()).toBe(false)
    await expect(issuer.issue(order, new AbortController().signal)).rejects.toMatchObject({
      code: 'ISSUER_UNAVAILABLE',
    })
  })
})

describe('usableUntil (for chains an external issuer returns)', () => {
  it('is the leaf’s notAfter within its chain, and the CA’s when the leaf outlives it', async () => {
    const { ca, pem } = await caValidFor(Date.now() - HOUR, Date.now() + 2 * HOUR)
    const issuer = new LocalCaIssuer({ ca, chainPem: '', template })
    const capped = await issuer.issue(order, new AbortController().signal)
    expect(usableUntil(capped.certificatePem, pem)).toEqual(capped.notAfter)
    const long = await caValidFor(Date.now() - HOUR, Date.now() + 100 * HOUR)
    const leaf = await new LocalCaIssuer({ ca: long.ca, chainPem: '', template }).issue(
      order,
      new AbortController().signal,
    )
    // the same leaf presented with a CA that ends sooner
    expect(leaf.notAfter.getTime()).toBeGreaterThan(Date.now() + 90 * HOUR)
    const caEnd = new Date(new X509Certificate(pem).validTo)
    expect(usableUntil(leaf.certificatePem, pem)).toEqual(caEnd)
    expect(usableUntil(leaf.certificatePem + pem)).toEqual(caEnd)
  })
})
