import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildCertificate, type CertificateProfile } from '../../../src/pki/certificate.js'
import { tlv } from '../../../src/pki/der.js'
import { checkDer, readElement } from '../../../src/pki/der-reader.js'
import { DEV_PKI_FILES } from '../../../src/pki/dev-pki.js'
import { PkiError } from '../../../src/pki/errors.js'
import { generateKey, spkiDer } from '../../../src/pki/keys.js'
import { toPem } from '../../../src/pki/pem.js'
import { loadCa, selfSigner } from '../../../src/pki/signer.js'
import { createTestPki } from '../../support/pki.js'
import { openssl } from '../../support/tools.js'

describe('DER lengths', () => {
  it.each([0, 127, 128, 255, 256, 70_000])('round-trips a %i-byte element', (n) => {
    const el = tlv(0x04, Buffer.alloc(n, 1))
    const read = readElement(el)
    expect(read.end - read.contentStart).toBe(n)
    expect(read.end).toBe(el.length)
  })

  it('refuses truncated input', () => {
    expect(() => readElement(Buffer.from([0x30, 0x05, 0x01]))).toThrow(PkiError)
  })

  it.each([
    ['indefinite length', '3080020100 0000'],
    ['non-minimal long form', '308103020100'],
    ['length with a leading zero', '30820003020100'],
    ['child past its parent', '3003020300'],
    ['constructed OCTET STRING', '2403040100'],
    ['high tag number', '1f2100'],
  ])('refuses %s', (_, hex) => {
    const buf = Buffer.from(hex.replace(/ /g, ''), 'hex')
    expect(() => {
      const el = readElement(buf)
      checkDer(buf, el)
    }).toThrow(PkiError)
  })
})

describe('development PKI and certificate builder, checked by openssl', () => {
  it('makes CAs that openssl reads as CAs, and leaves that chain to them', async () => {
    const pki = await createTestPki()
    const caText = await openssl(['x509', '-in', pki.file(DEV_PKI_FILES.factoryCaCert), '-noout', '-text'])
    expect(caText).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/)
    expect(caText).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/)
    const device = pki.device('device-001').certFile
    expect(await openssl(['verify', '-CAfile', pki.file(DEV_PKI_FILES.factoryCaCert), device])).toContain(
      ': OK',
    )
    expect(
      await openssl(['verify', '-CAfile', pki.file(DEV_PKI_FILES.issuingCaCert), pki.file('server.crt')]),
    ).toContain(': OK')
  })

  it.each(['ECDSA-P384', 'Ed25519', 'RSA-2048'] as const)(
    'signs with a %s CA key; AKI matches the CA SKI',
    async (caAlg) => {
      const pki = await createTestPki()
      const now = Date.now()
      const caKeys = await generateKey(caAlg)
      const caProfile: CertificateProfile = {
        commonName: `Test ${caAlg} CA`,
        isCa: true,
        keyUsage: ['keyCertSign', 'cRLSign'],
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3600_000),
      }
      const caDer = buildCertificate(caProfile, spkiDer(caKeys.publicKey), selfSigner(caProfile, caKeys)).der
      const ca = loadCa(
        toPem(caDer, 'CERTIFICATE'),
        caKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      )
      const leafKeys = await generateKey('RSA-2048')
      const leafProfile: CertificateProfile = {
        commonName: 'device-001',
        keyUsage: ['digitalSignature', 'keyEncipherment'],
        extKeyUsage: ['clientAuth'],
        ipAddresses: ['10.0.0.1', 'fe80::1'],
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 60_000),
      }
      const leaf = buildCertificate(leafProfile, spkiDer(leafKeys.publicKey), ca.signer)
      const caFile = join(pki.stateDir, 'ca.pem')
      const leafFile = join(pki.stateDir, 'leaf.pem')
      await writeFile(caFile, toPem(caDer, 'CERTIFICATE'))
      await writeFile(leafFile, toPem(leaf.der, 'CERTIFICATE'))
      expect(await openssl(['verify', '-CAfile', caFile, leafFile])).toContain(': OK')
      const text = await openssl(['x509', '-in', leafFile, '-noout', '-text'])
      expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/)
      expect(text).toContain('IP Address:10.0.0.1, IP Address:FE80:0:0:0:0:0:0:1')
      const caText = await openssl(['x509', '-in', caFile, '-noout', '-text'])
      const ski = /Subject Key Identifier:\s+(\S+)/.exec(caText)?.[1]
      expect(ski).toBeDefined()
      expect(/Authority Key Identifier:\s+(\S+)/.exec(text)?.[1]).toBe(ski)
    },
  )
})
