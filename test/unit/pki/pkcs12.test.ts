import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import forge from 'node-forge'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildCertificate, type CertificateProfile } from '../../../src/pki/certificate.js'
import { DEV_PKI_FILES } from '../../../src/pki/dev-pki.js'
import { generateKey, spkiDer } from '../../../src/pki/keys.js'
import { certificatesFromPem } from '../../../src/pki/pem.js'
import { buildPkcs12, PKCS12_ITERATIONS, pkcs12Kdf } from '../../../src/pki/pkcs12.js'
import { type LoadedCa, loadCa } from '../../../src/pki/signer.js'
import type { KeyAlgorithm } from '../../../src/protocol/messages.js'
import { opensslPkcs12, pythonPkcs12 } from '../../support/pkcs12.js'
import { createTestPki } from '../../support/pki.js'

let ca: LoadedCa

beforeAll(async () => {
  const pki = await createTestPki()
  ca = loadCa(
    await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
    await readFile(pki.file(DEV_PKI_FILES.issuingCaKey), 'utf8'),
  )
})

/** credentials makes a key of `algorithm` and a certificate for it from the development issuing CA. */
async function credentials(algorithm: KeyAlgorithm, commonName = 'device-001') {
  const keys = await generateKey(algorithm)
  const now = Date.now()
  const profile: CertificateProfile = {
    commonName,
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['clientAuth'],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
  }
  const leaf = buildCertificate(profile, spkiDer(keys.publicKey), ca.signer).der
  return {
    privateKeyPem: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certificates: [leaf, ...certificatesFromPem(ca.certificatePem)],
    friendlyName: commonName,
  }
}

const PASSWORD = 'correct horse battery'

describe('buildPkcs12: read by openssl 3 (no legacy provider) and Python cryptography', () => {
  it.each([
    ['ECDSA-P256', 'EllipticCurvePrivateKey'],
    ['ECDSA-P384', 'EllipticCurvePrivateKey'],
    ['Ed25519', 'Ed25519PrivateKey'],
    ['RSA-2048', 'RSAPrivateKey'],
  ] as const)('%s round-trips', async (algorithm, keyType) => {
    const contents = await credentials(algorithm)
    const bundle = await buildPkcs12(contents, PASSWORD)

    const o = await opensslPkcs12(bundle, PASSWORD)
    expect(o.code, o.info).toBe(0)
    expect(o.info).toContain(`MAC: sha256, Iteration ${PKCS12_ITERATIONS}`)
    expect(o.info).toContain('PKCS7 Data')
    expect(o.info).toContain('Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC')
    expect(o.info).toContain(`Iteration ${PKCS12_ITERATIONS}, PRF hmacWithSHA256`)
    expect(o.info).not.toMatch(/RC2|3DES|SHA1|sha1/)
    // the key openssl decrypted is the key that went in, and its certificate is the leaf, chain after it
    const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(o.pem)?.[0] ?? ''
    expect(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' })).toEqual(
      createPrivateKey(contents.privateKeyPem).export({ type: 'pkcs8', format: 'der' }),
    )
    const certs = certificatesFromPem(o.pem)
    expect(certs).toEqual(contents.certificates)
    expect(new X509Certificate(certs[0] as Buffer).checkPrivateKey(createPrivateKey(keyPem))).toBe(true)
    expect(o.pem).toContain('friendlyName: device-001')
    expect(o.pem.match(/localKeyID: /g)).toHaveLength(2) // the key and its certificate

    const p = await pythonPkcs12(bundle, PASSWORD)
    expect(p).toMatchObject({ ok: true, keyType, keyMatches: true, friendlyName: 'device-001' })
    expect(p.subject).toBe('CN=device-001')
    expect(p.additional).toEqual(['CN=Development Issuing CA,O=mqtt-registration-bridge development'])
  })

  it('a wrong password opens nothing, in either reader', async () => {
    const bundle = await buildPkcs12(await credentials('ECDSA-P256'), PASSWORD)
    const o = await opensslPkcs12(bundle, `${PASSWORD}!`)
    expect(o.code).not.toBe(0)
    expect(o.info).toMatch(/mac verify error/i)
    expect(o.pem).not.toContain('PRIVATE KEY')
    const p = await pythonPkcs12(bundle, `${PASSWORD}!`)
    expect(p.ok).toBe(false)
  })

  it.each([
    ['non-ASCII in the BMP', 'pässwörd-ß€-ключ'],
    ['outside the BMP', 'emoji 🔑🔒 key'],
    ['spaces and symbols', ' "quoted" \\ back '],
  ])('a password %s is read alike (UTF-8 for PBES2, BMPString for the MAC)', async (_, password) => {
    const bundle = await buildPkcs12(await credentials('ECDSA-P256'), password)
    const o = await opensslPkcs12(bundle, password)
    expect(o.code, o.info).toBe(0)
    expect(o.pem).toContain('BEGIN PRIVATE KEY')
    expect(await pythonPkcs12(bundle, password)).toMatchObject({ ok: true, keyMatches: true })
  })

  it('every bundle has its own salts and IV: the same contents and password never give the same bytes', async () => {
    const contents = await credentials('ECDSA-P256')
    const [a, b] = await Promise.all([buildPkcs12(contents, PASSWORD), buildPkcs12(contents, PASSWORD)])
    expect(a.equals(b as Buffer)).toBe(false)
  })

  it('refuses a key that is not the certificate’s', async () => {
    const one = await credentials('ECDSA-P256')
    const other = await credentials('ECDSA-P256')
    await expect(buildPkcs12({ ...one, privateKeyPem: other.privateKeyPem }, PASSWORD)).rejects.toThrow(
      /does not match/,
    )
  })

  it('pkcs12Kdf agrees with node-forge’s RFC 7292 B.2 implementation (SHA-256, MAC key)', () => {
    for (const password of ['', 'a', PASSWORD, 'pässwörd-ß€', 'x'.repeat(128)]) {
      const salt = randomBytes(16)
      const ours = pkcs12Kdf(password, salt, 3, 2048)
      const theirs = forge.pkcs12.generateKey(
        password,
        forge.util.createBuffer(salt.toString('binary')),
        3,
        2048,
        32,
        forge.md.sha256.create(),
      )
      expect(ours.toString('binary')).toBe(theirs.getBytes())
    }
  })
})
