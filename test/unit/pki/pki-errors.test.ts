import { describe, expect, it } from 'vitest'
import { parseCsr } from '../../../src/pki/csr.js'
import { PKI_REASONS } from '../../../src/pki/errors.js'
import { ERROR_CODES, RegistrationError } from '../../../src/protocol/errors.js'
import { PKI_WIRE_CODES } from '../../../src/registration/pki-errors.js'
import { authorize } from '../../../src/registration/policy.js'
import { buildCorpus } from '../../support/csr-corpus.js'
import { bits, csrFrom, defaultParts, fixtureKeys, OID, oid, seq } from '../../support/csr-forge.js'

const policy = {
  allowedKeyAlgorithms: ['ECDSA-P256', 'ECDSA-P384', 'RSA-2048', 'RSA-3072', 'Ed25519'] as const,
  defaultKeyAlgorithm: 'ECDSA-P256' as const,
  template: { dnsNames: ['{deviceId}.devices.example'], uris: [], validityHours: 24 },
}

describe('PKI reasons become wire codes in one place', () => {
  it('maps every PKI reason to a wire code', () => {
    for (const reason of PKI_REASONS) expect(Object.keys(ERROR_CODES)).toContain(PKI_WIRE_CODES[reason])
  })

  it('the registration layer answers each corpus refusal with its mapped wire code', () => {
    for (const entry of buildCorpus().filter((c) => c.bridge !== 'accept')) {
      const csr = typeof entry.input === 'string' ? entry.input : entry.input.toString('base64')
      let code: string | undefined
      try {
        authorize('device-1', { csr }, { ...policy, allowedKeyAlgorithms: [...policy.allowedKeyAlgorithms] })
      } catch (err) {
        code = err instanceof RegistrationError ? err.code : 'not a RegistrationError'
      }
      expect(code, entry.name).toBe(PKI_WIRE_CODES[entry.bridge as (typeof PKI_REASONS)[number]])
    }
  })
})

describe('the certificate carries a key encoded by the bridge, never the device bytes', () => {
  const p256 = fixtureKeys()['P-256']
  const point = p256.spki.subarray(p256.spki.length - 65)

  it('a compressed point is certified uncompressed', () => {
    const compressed = Buffer.concat([Buffer.from([2 + ((point[64] ?? 0) & 1)]), point.subarray(1, 33)])
    const spki = seq(seq(oid(OID.ecPublicKey), oid(OID.p256)), bits(compressed))
    const csr = parseCsr(csrFrom(p256, { ...defaultParts(p256), spki }).toString('base64'))
    expect(csr.spki.equals(p256.spki)).toBe(true)
  })

  it('the SubjectPublicKeyInfo is a new buffer, not a view of the request', () => {
    const der = csrFrom(p256, defaultParts(p256))
    const csr = parseCsr(der.toString('base64'))
    expect(csr.spki.equals(p256.spki)).toBe(true)
    csr.der.fill(0) // the request's bytes are gone; the key the bridge encoded is not
    expect(csr.spki.equals(p256.spki)).toBe(true)
  })
})
