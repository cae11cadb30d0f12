import { readFile, writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { buildCertificate, type CertificateProfile } from '../../src/pki/certificate.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { keyIdentifier } from '../../src/pki/keys.js'
import { toPem } from '../../src/pki/pem.js'
import { loadCa } from '../../src/pki/signer.js'
import { createTestPki } from '../support/pki.js'
import { run } from '../support/tools.js'

const cli = new URL('../../dist/cli.js', import.meta.url).pathname

describe('serve with an issuing CA that has expired', () => {
  it('exits non-zero with a clear message, listening on nothing', async () => {
    const pki = await createTestPki()
    const certFile = pki.file(DEV_PKI_FILES.issuingCaCert)
    const keyPem = await readFile(pki.file(DEV_PKI_FILES.issuingCaKey), 'utf8')
    const current = loadCa(await readFile(certFile, 'utf8'), keyPem)
    // the same CA key and name, re-signed by the factory CA with a validity that ended an hour ago
    const factory = loadCa(
      await readFile(pki.file(DEV_PKI_FILES.factoryCaCert), 'utf8'),
      await readFile(pki.file(DEV_PKI_FILES.factoryCaKey), 'utf8'),
    )
    const profile: CertificateProfile = {
      commonName: 'Expired issuing CA',
      isCa: true,
      pathLength: 0,
      keyUsage: ['keyCertSign', 'cRLSign'],
      notBefore: new Date(Date.now() - 48 * 3600_000),
      notAfter: new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000),
    }
    const spki = current.certificate.publicKey.export({ format: 'der', type: 'spki' })
    expect(keyIdentifier(spki).length).toBe(20)
    await writeFile(certFile, toPem(buildCertificate(profile, spki, factory.signer).der, 'CERTIFICATE'))
    const result = await run(process.execPath, [
      ...[cli, 'serve', '--state-dir', pki.stateDir, '--host', '127.0.0.1', '--port', '0'],
      ...['--log-level', 'silent', '--set', 'health.port=0'],
    ])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/issuer\.localCa: the issuing CA expired at \d{4}-/)
    expect(result.stdout + result.stderr).not.toContain('Bridge listening')
  })
})
