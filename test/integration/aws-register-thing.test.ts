import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ageTokens, certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { type AwsDevice, connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'

// RegisterThing and the ownership token, with the official SDK (IotIdentityClientv2 over MQTT 3.1.1): the whole
// fleet-provisioning flow, every documented rejection, and retries.

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge([
    'aws.enabled=true',
    `aws.templatesFile=${await writeTemplates()}`,
    // one device walks through every rejection of RegisterThing, each spending a token of its rate limit (5 by
    // default; aws-wire.test.ts shows the default limit at work)
    'registration.rateLimit.burst=20',
  ])
})
afterAll(() => bridge.stop())

/** withDevice runs `fn` with an SDK device connected with the identity's factory certificate. */
async function withDevice<T>(id: string, fn: (device: AwsDevice) => Promise<T>): Promise<T> {
  const device = await connectAwsDevice(bridge, id)
  try {
    return await fn(device)
  } finally {
    await device.close()
  }
}

const register = (device: AwsDevice, token: string | undefined, parameters?: Record<string, string>) =>
  device.identity.registerThing({
    templateName: 'FleetTemplate',
    certificateOwnershipToken: token as string,
    ...(parameters ? { parameters } : {}),
  })

const newest = async (identity: string) => (await certificatesOf(bridge, identity))[0]

describe('AWS fleet provisioning: RegisterThing with the official SDK', () => {
  it('CreateKeysAndCertificate then RegisterThing: active, with the thing name and the template configuration', async () => {
    await withDevice('device-001', async (device) => {
      const created = await device.identity.createKeysAndCertificate({})
      expect((await newest('device-001'))?.state).toBe('pending')
      const registered = await register(device, created.certificateOwnershipToken, { SerialNumber: 'SN-1' })
      expect(registered).toEqual({
        thingName: 'device-001',
        deviceConfiguration: { site: 'factory-1', serial: 'SN-1' },
      })
      const record = await newest('device-001')
      expect(record).toMatchObject({ state: 'active', sha256Fingerprint: created.certificateId })
      expect(record?.provisioning).toMatchObject({ templateName: 'FleetTemplate', thingName: 'device-001' })
      // the same RegisterThing again (its answer lost): the same answer; other parameters with that token: refused
      expect(await register(device, created.certificateOwnershipToken, { SerialNumber: 'SN-1' })).toEqual(
        registered,
      )
      const other = await modeledErrorOf(
        register(device, created.certificateOwnershipToken, { SerialNumber: 'SN-2' }),
      )
      expect(other).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      expect((await newest('device-001'))?.provisioning?.deviceConfiguration).toEqual(
        registered.deviceConfiguration,
      )
      // the audit log: the create call's issuance, then its activation (written after the registry's update;
      // two round trips later it is on disk)
      const audit = (await bridge.auditLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
      const serialNumber = record?.serialNumber
      expect(audit.filter((a) => a.serialNumber === serialNumber).map((a) => a.event)).toEqual([
        'registered',
        'activated',
      ])
      expect(audit.find((a) => a.event === 'activated')).toMatchObject({
        identity: 'device-001',
        template: 'FleetTemplate',
        thingName: 'device-001',
      })
    })
  })

  it('CreateCertificateFromCsr then RegisterThing; the same CSR again is the same certificate with a fresh token', async () => {
    const { csr } = await opensslCsr('/CN=device-002')
    await withDevice('device-002', async (device) => {
      const first = await device.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      const again = await device.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      expect(again.certificatePem).toBe(first.certificatePem)
      expect(again.certificateId).toBe(first.certificateId)
      expect(again.certificateOwnershipToken).not.toBe(first.certificateOwnershipToken)
      // the token is never stored in clear: the replay's fresh one replaced it, the first stops working
      const stale = await modeledErrorOf(
        register(device, first.certificateOwnershipToken, { SerialNumber: 'SN-2' }),
      )
      expect(stale).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      const registered = await register(device, again.certificateOwnershipToken, {
        SerialNumber: 'SN-2',
        Site: 'b',
      })
      expect(registered).toEqual({
        thingName: 'device-002',
        deviceConfiguration: { site: 'b', serial: 'SN-2' },
      })
      expect((await certificatesOf(bridge, 'device-002')).map((c) => c.state)).toEqual(['active'])
    })
  })

  it('a CreateKeysAndCertificate retry within the reply cache gets the same certificate and key, and a fresh token', async () => {
    await withDevice('device-003', async (device) => {
      const first = await device.identity.createKeysAndCertificate({})
      const again = await device.identity.createKeysAndCertificate({})
      expect(again.certificatePem).toBe(first.certificatePem)
      expect(again.privateKey).toBe(first.privateKey)
      expect(again.certificateOwnershipToken).not.toBe(first.certificateOwnershipToken)
      expect((await certificatesOf(bridge, 'device-003')).length).toBe(1)
    })
  })

  it('every documented rejection, in AWS shape, leaving the certificate pending', async () => {
    await withDevice('device-004', async (device) => {
      const { certificateOwnershipToken: token } = await device.identity.createKeysAndCertificate({})
      const cases: [Promise<unknown>, number, string][] = [
        // the SDK drops an empty token from the body: the bridge gets {}
        [register(device, '', { SerialNumber: 'SN-4' }), 400, 'InvalidCertificateOwnershipToken'],
        [register(device, 'not-a-token', { SerialNumber: 'SN-4' }), 400, 'InvalidCertificateOwnershipToken'],
        [register(device, token), 400, 'InvalidParameters'],
        [register(device, token, { SerialNumber: 'nope' }), 400, 'InvalidParameters'],
        [
          device.identity.registerThing({
            templateName: 'NoSuchTemplate',
            certificateOwnershipToken: token as string,
          }),
          404,
          'TemplateNotFound',
        ],
        [
          device.identity.registerThing({
            templateName: 'GatewayTemplate',
            certificateOwnershipToken: token as string,
          }),
          403,
          'AccessDenied',
        ],
      ]
      for (const [request, statusCode, errorCode] of cases)
        expect(await modeledErrorOf(request)).toMatchObject({ statusCode, errorCode })
      expect((await newest('device-004'))?.state).toBe('pending')
    })
  })

  it("another identity's token is unknown to it: the owner's certificate stays pending, and registers", async () => {
    const owner = await connectAwsDevice(bridge, 'device-005')
    try {
      const created = await owner.identity.createKeysAndCertificate({})
      // another device the template is for too
      const thiefFiles = await bridge.pki.makeDevice('device-thief')
      const thief = await connectAwsDevice(bridge, 'device-thief', { files: thiefFiles })
      try {
        const stolen = await modeledErrorOf(
          thief.identity.registerThing({
            templateName: 'FleetTemplate',
            certificateOwnershipToken: created.certificateOwnershipToken as string,
            parameters: { SerialNumber: 'SN-9' },
          }),
        )
        expect(stolen).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
        expect(stolen.errorMessage).toBe('the certificate ownership token is unknown')
      } finally {
        await thief.close()
      }
      expect((await newest('device-005'))?.state).toBe('pending')
      await register(owner, created.certificateOwnershipToken, { SerialNumber: 'SN-5' })
    } finally {
      await owner.close()
    }
  })

  it('an expired token is refused and its pending certificate revoked for good; a new create call starts over', async () => {
    const files = await bridge.pki.makeDevice('device-expiry')
    const device = await connectAwsDevice(bridge, 'device-expiry', { files })
    try {
      const created = await device.identity.createKeysAndCertificate({})
      ageTokens(bridge, 'device-expiry')
      const expired = await modeledErrorOf(
        register(device, created.certificateOwnershipToken, { SerialNumber: 'SN-7' }),
      )
      expect(expired).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      expect(await newest('device-expiry')).toMatchObject({
        state: 'revoked',
        revocationReason: 'cessationOfOperation',
      })
      const fresh = await device.identity.createKeysAndCertificate({})
      expect(fresh.certificateId).not.toBe(created.certificateId)
      await register(device, fresh.certificateOwnershipToken, { SerialNumber: 'SN-7' })
      expect((await certificatesOf(bridge, 'device-expiry')).map((c) => c.state)).toEqual([
        'active',
        'revoked',
      ])
    } finally {
      await device.close()
    }
  })

  it('a create retry (a replay) after its token expired does not revive it: 409 once, then a new certificate', async () => {
    const files = await bridge.pki.makeDevice('device-lapsed')
    const device = await connectAwsDevice(bridge, 'device-lapsed', { files })
    try {
      const created = await device.identity.createKeysAndCertificate({})
      ageTokens(bridge, 'device-lapsed')
      expect(await modeledErrorOf(device.identity.createKeysAndCertificate({}))).toMatchObject({
        statusCode: 409,
        errorCode: 'ConflictingRequest',
      })
      const fresh = await device.identity.createKeysAndCertificate({})
      expect(fresh.certificateId).not.toBe(created.certificateId)
      expect(
        (await certificatesOf(bridge, 'device-lapsed')).map((c) => [c.state, c.revocationReason]),
      ).toEqual([
        ['pending', undefined],
        ['revoked', 'cessationOfOperation'],
      ])
    } finally {
      await device.close()
    }
  })
})
