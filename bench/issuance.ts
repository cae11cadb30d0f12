import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import * as x509 from '@peculiar/x509'
import forge from 'node-forge'
import { LocalCaIssuer } from '../src/issuers/local-ca/local-ca-issuer.js'
import { buildCertificate, type CertificateProfile } from '../src/pki/certificate.js'
import { parseCsr } from '../src/pki/csr.js'
import { buildCsr } from '../src/pki/csr-builder.js'
import { generateKey, type KeyPair, spkiDer } from '../src/pki/keys.js'
import { toPem } from '../src/pki/pem.js'
import { type LoadedCa, loadCa, selfSigner } from '../src/pki/signer.js'
import type { KeyAlgorithm } from '../src/protocol/messages.js'
import { authorize } from '../src/registration/policy.js'
import { cfsslRate } from './lib/cfssl.js'
import { type CsrReaderRow, csrReaders } from './lib/csr-readers.js'
import { genericBuild, genericSigner } from './lib/generic-builder.js'
import { ratio } from './lib/stats.js'

/** IssuanceRow is one issuer implementation's rate on one core. */
export interface IssuanceRow {
  readonly implementation: string
  readonly caKey: KeyAlgorithm
  readonly perSecond: number
  readonly loopDelayP99Ms?: number
  readonly note?: string
}

const template = { dnsNames: ['{deviceId}.devices.example'], uris: [], validityHours: 720 }

async function makeCa(algorithm: KeyAlgorithm): Promise<{ ca: LoadedCa; keys: KeyPair }> {
  const keys = await generateKey(algorithm)
  const profile: CertificateProfile = {
    commonName: `Bench ${algorithm} CA`,
    isCa: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86400_000),
  }
  const der = buildCertificate(profile, spkiDer(keys.publicKey), selfSigner(profile, keys)).der
  const ca = loadCa(
    toPem(der, 'CERTIFICATE'),
    keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  )
  return { ca, keys }
}

async function csrs(count: number, algorithm: KeyAlgorithm): Promise<{ id: string; pem: string }[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const keys = await generateKey(algorithm)
      const id = `device-${i}`
      return { id, pem: buildCsr(id, keys.privateKey, keys.publicKey) }
    }),
  )
}

/** rate runs `issue` over the CSRs, one per macrotask as in the bridge, for `ms`, and watches the event loop. */
async function rate(
  ms: number,
  items: { id: string; pem: string }[],
  issue: (item: { id: string; pem: string }) => Promise<unknown>,
) {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const started = performance.now()
  let done = 0
  while (performance.now() - started < ms) {
    await issue(items[done % items.length] as { id: string; pem: string })
    done++
    await new Promise((r) => setImmediate(r)) // each issuance is its own task, as each request is in the bridge
  }
  delay.disable()
  const seconds = (performance.now() - started) / 1000
  return {
    perSecond: Math.round(done / seconds),
    loopDelayP99Ms: Math.round((delay.percentile(99) / 1e6) * 100) / 100,
  }
}

/** issuanceBenchmark compares the bridge's issuance path with generic certificate builders, on one core. */
export async function issuanceBenchmark(options: {
  durationMs: number
}): Promise<{ rows: IssuanceRow[]; vsGeneric: number; builders: IssuanceRow[]; readers: CsrReaderRow[] }> {
  const rows: IssuanceRow[] = []
  const policy = {
    allowedKeyAlgorithms: ['ECDSA-P256', 'RSA-2048'] as KeyAlgorithm[],
    defaultKeyAlgorithm: 'ECDSA-P256' as const,
    template,
  }
  const ecCsrs = await csrs(64, 'ECDSA-P256')
  const rsaCsrs = await csrs(16, 'RSA-2048')
  for (const caAlg of ['ECDSA-P256', 'RSA-2048'] as const) {
    const { ca } = await makeCa(caAlg)
    const issuer = new LocalCaIssuer({ ca, chainPem: '', template })
    const items = caAlg === 'RSA-2048' ? rsaCsrs : ecCsrs
    const controller = new AbortController()
    const r = await rate(options.durationMs, items, (item) =>
      issuer.issue(authorize(item.id, { csr: item.pem }, policy), controller.signal),
    )
    rows.push({ implementation: 'bridge (parse, verify, build, sign)', caKey: caAlg, ...r })
  }
  // like for like: the same profile, the same device key and the same synchronous node:crypto signature with
  // the same ECDSA P-256 CA; only the certificate builder differs
  const builders: IssuanceRow[] = []
  {
    const { ca } = await makeCa('ECDSA-P256')
    const keys = ecCsrs.map((c) => parseCsr(c.pem).spki)
    const now = Date.now()
    const profileFor = (i: number): CertificateProfile => ({
      commonName: `device-${i}`,
      dnsNames: [`device-${i}.devices.example`],
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['clientAuth'],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 720 * 3600_000),
    })
    const generic = genericSigner(ca.signer.subject, ca.signer.keyIdentifier, ca.signer.key)
    let i = 0
    const fast = await rate(options.durationMs, ecCsrs, async () => {
      i++
      buildCertificate(profileFor(i), keys[i % keys.length] as Buffer, ca.signer)
    })
    builders.push({
      implementation: 'fast builder: DER concatenation + node:crypto sign',
      caKey: 'ECDSA-P256',
      ...fast,
    })
    const schema = await rate(options.durationMs, ecCsrs, async () => {
      i++
      genericBuild(profileFor(i), keys[i % keys.length] as Buffer, generic)
    })
    builders.push({
      implementation: 'generic builder: @peculiar/asn1-x509 schemas + the same node:crypto sign',
      caKey: 'ECDSA-P256',
      ...schema,
    })
  }
  const readers = csrReaders(Math.max(100, options.durationMs / 3), ecCsrs)
  // the generic builder: @peculiar/x509 over WebCrypto, ECDSA P-256 CA
  {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
    const caKeys = (await webcrypto.subtle.generateKey(alg, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair
    x509.cryptoProvider.set(webcrypto as never)
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=Generic CA',
      keys: caKeys,
      signingAlgorithm: alg,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86400_000),
    })
    const r = await rate(options.durationMs, ecCsrs, async (item) => {
      const csr = new x509.Pkcs10CertificateRequest(item.pem)
      if (!(await csr.verify())) throw new Error('bad CSR')
      await x509.X509CertificateGenerator.create({
        serialNumber: `01${Date.now().toString(16)}`,
        subject: `CN=${item.id}`,
        issuer: caCert.subject,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 720 * 3600_000),
        signingAlgorithm: alg,
        publicKey: await csr.publicKey.export(alg, ['verify']),
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: `${item.id}.devices.example` }]),
          await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      })
    })
    rows.push({ implementation: '@peculiar/x509 generic builder', caKey: 'ECDSA-P256', ...r })
  }
  // node-forge: RSA only (it cannot read EC CSRs)
  {
    const caKeys = forge.pki.rsa.generateKeyPair(2048)
    const r = await rate(options.durationMs, rsaCsrs, async (item) => {
      const csr = forge.pki.certificationRequestFromPem(item.pem)
      if (!csr.verify()) throw new Error('bad CSR')
      const cert = forge.pki.createCertificate()
      cert.publicKey = csr.publicKey as forge.pki.PublicKey
      cert.serialNumber = `01${Date.now().toString(16)}`
      cert.validity.notBefore = new Date()
      cert.validity.notAfter = new Date(Date.now() + 720 * 3600_000)
      cert.setSubject(csr.subject.attributes)
      cert.setIssuer([{ name: 'commonName', value: 'Forge CA' }])
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectKeyIdentifier' },
      ])
      cert.sign(caKeys.privateKey, forge.md.sha256.create())
      forge.pki.certificateToPem(cert)
    })
    rows.push({ implementation: 'node-forge (pure JS)', caKey: 'RSA-2048', ...r })
  }
  const cfssl = await cfsslRate(
    options.durationMs,
    ecCsrs.map((c) => c.pem),
  )
  if (cfssl) rows.push(cfssl)
  // the speed claim compares equal things: the two builders over the same node:crypto signing
  const fastRate = builders[0]?.perSecond ?? 0
  const genericRate = builders[1]?.perSecond ?? 1
  for (const row of [...rows, ...builders])
    process.stderr.write(
      `issuance ${row.implementation} (${row.caKey} CA): ${row.perSecond}/s, loop p99 ${row.loopDelayP99Ms ?? '-'} ms\n`,
    )
  for (const r of readers) process.stderr.write(`csr read ${r.reader}: ${r.microseconds} µs\n`)
  return { rows, vsGeneric: ratio(fastRate, genericRate), builders, readers }
}
