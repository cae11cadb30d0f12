import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { certificatesOf } from '../support/aws-fleet.js'
import { connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'

// The two create calls of AWS fleet provisioning, driven by the official SDK (IotIdentityClientv2 over MQTT 3.1.1)
// against a bridge with aws.enabled and the product's defaults otherwise.

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge(['aws.enabled=true'])
})
afterAll(() => bridge.stop())

/** stateOf is the state of the identity's certificate with this fingerprint, in the bridge's registry. */
async function stateOf(identity: string, certificateId: string | undefined): Promise<string | undefined> {
  const all = await certificatesOf(bridge, identity)
  return all.find((c) => c.sha256Fingerprint === certificateId)?.state
}

describe('AWS fleet provisioning: the create calls, with the official SDK', () => {
  it('CreateKeysAndCertificate: a key and a certificate for the claim identity, pending, with an ownership token', async () => {
    const device = await connectAwsDevice(bridge, 'device-001')
    try {
      const created = await device.identity.createKeysAndCertificate({})
      const cert = new X509Certificate(created.certificatePem as string)
      expect(cert.subject).toContain('CN=device-001')
      expect(created.privateKey).toMatch(/BEGIN PRIVATE KEY/)
      expect(cert.checkPrivateKey(createPrivateKey(created.privateKey as string))).toBe(true)
      expect(created.certificateId).toBe(createHash('sha256').update(cert.raw).digest('hex'))
      expect(created.certificateOwnershipToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(await stateOf('device-001', created.certificateId)).toBe('pending')
    } finally {
      await device.close()
    }
  })

  it('CreateCertificateFromCsr: the CSR certified for the claim identity, without a key in the answer', async () => {
    const { csr } = await opensslCsr('/CN=device-002')
    const device = await connectAwsDevice(bridge, 'device-002')
    try {
      const created = await device.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      expect(new X509Certificate(created.certificatePem as string).subject).toContain('CN=device-002')
      expect(created).not.toHaveProperty('privateKey')
      expect(created.certificateOwnershipToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(await stateOf('device-002', created.certificateId)).toBe('pending')
    } finally {
      await device.close()
    }
  })

  it('a bad CSR, or one naming another identity, is rejected in AWS shape (400 InvalidCSR)', async () => {
    const other = await opensslCsr('/CN=device-004')
    const device = await connectAwsDevice(bridge, 'device-003')
    try {
      const garbage = await modeledErrorOf(
        device.identity.createCertificateFromCsr({ certificateSigningRequest: 'not a CSR' }),
      )
      expect(garbage).toMatchObject({ statusCode: 400, errorCode: 'InvalidCSR' })
      expect(garbage.errorMessage).toEqual(expect.any(String))
      expect(Object.keys(garbage).sort()).toEqual(['errorCode', 'errorMessage', 'statusCode'])
      const stolen = await modeledErrorOf(
        device.identity.createCertificateFromCsr({ certificateSigningRequest: other.csr }),
      )
      expect(stolen).toMatchObject({ statusCode: 400, errorCode: 'InvalidCSR' })
      expect(String(stolen.errorMessage)).toContain('CSR_IDENTITY_MISMATCH')
    } finally {
      await device.close()
    }
  })
})
