import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildCertificate } from '../../../src/pki/certificate.js'
import { buildCrl } from '../../../src/pki/crl.js'
import { DEV_PKI_FILES } from '../../../src/pki/dev-pki.js'
import { generateKey, spkiDer } from '../../../src/pki/keys.js'
import { toPem } from '../../../src/pki/pem.js'
import { loadCa } from '../../../src/pki/signer.js'
import { createTestPki } from '../../support/pki.js'
import { openssl, run } from '../../support/tools.js'

async function setup() {
  const pki = await createTestPki()
  const caFile = pki.file(DEV_PKI_FILES.issuingCaCert)
  const ca = loadCa(
    await readFile(caFile, 'utf8'),
    await readFile(pki.file(DEV_PKI_FILES.issuingCaKey), 'utf8'),
  )
  const issue = async (name: string) => {
    const keys = await generateKey('ECDSA-P256')
    const now = Date.now()
    const cert = buildCertificate(
      {
        commonName: name,
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['clientAuth'],
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
      },
      spkiDer(keys.publicKey),
      ca.signer,
    )
    const file = join(pki.dir, `${name}.crt`)
    await writeFile(file, toPem(cert.der, 'CERTIFICATE'))
    return { file, serialNumber: cert.serialNumber }
  }
  return { pki, caFile, ca, issue }
}

describe('buildCrl', () => {
  it('makes a v2 CRL that openssl verifies with the issuing CA, and that revokes exactly the listed serials', async () => {
    const { pki, caFile, ca, issue } = await setup()
    const revoked = await issue('revoked-1')
    const good = await issue('good-1')
    const now = new Date()
    const der = buildCrl(ca.signer, [{ serialNumber: revoked.serialNumber, revokedAt: now, reasonCode: 1 }], {
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 3_600_000),
      crlNumber: 42n,
    })
    const crlFile = join(pki.dir, 'crl.pem')
    await writeFile(crlFile, toPem(der, 'X509 CRL'))
    const text = await openssl(['crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout', '-text'])
    expect(text).toContain('Version 2')
    expect(text).toContain('X509v3 CRL Number')
    expect(text).toContain('42')
    expect(text.toUpperCase()).toContain(revoked.serialNumber.toUpperCase())
    expect(text).toContain('Key Compromise')
    const verify = (file: string) =>
      run('openssl', ['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlFile, file])
    const bad = await verify(revoked.file)
    expect(bad.code).not.toBe(0)
    expect(bad.stdout + bad.stderr).toContain('certificate revoked')
    expect((await verify(good.file)).code).toBe(0)
  })

  it('an empty CRL leaves revokedCertificates out and still verifies', async () => {
    const { pki, caFile, ca, issue } = await setup()
    const good = await issue('good-2')
    const now = new Date()
    const der = buildCrl(ca.signer, [], {
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 60_000),
      crlNumber: 1n,
    })
    const crlFile = join(pki.dir, 'empty.pem')
    await writeFile(crlFile, toPem(der, 'X509 CRL'))
    const text = await openssl(['crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout', '-text'])
    expect(text).toContain('No Revoked Certificates')
    const ok = await run('openssl', [
      'verify',
      '-crl_check',
      '-CAfile',
      caFile,
      '-CRLfile',
      crlFile,
      good.file,
    ])
    expect(ok.code).toBe(0)
  })
})
