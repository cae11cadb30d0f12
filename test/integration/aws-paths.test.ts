import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { register, renew } from '../../src/client/register.js'
import { certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'

// Every other path that meets a pending certificate, with the product's defaults (reRegistration: refuse): a
// device's own protocol-v1 registration, a gateway batch item, and a renewal, after an AWS create call.

let bridge: TestBridge
beforeAll(async () => {
  const policy = await writePolicy(
    "gateways:\n  - match: gateway-001\n    devices: { patterns: ['device-*'] }\n    adopt: true\n",
  )
  bridge = await startTestBridge([
    'aws.enabled=true',
    `aws.templatesFile=${await writeTemplates()}`,
    `gateways.policyFile=${policy}`,
    'lifecycle.renewal.windowFraction=1',
  ])
})
afterAll(() => bridge.stop())

/** pendingToken makes an AWS create call for the identity and returns its token (the certificate pending). */
async function pendingToken(id: string): Promise<string> {
  const device = await connectAwsDevice(bridge, id)
  try {
    return (await device.identity.createKeysAndCertificate({})).certificateOwnershipToken as string
  } finally {
    await device.close()
  }
}

/** registerThing runs RegisterThing for the identity with a token; the AWS answer or its rejection body. */
async function registerThing(id: string, token: string, files?: { certFile: string; keyFile: string }) {
  const device = await connectAwsDevice(bridge, id, files ? { files } : {})
  try {
    return await modeledErrorOf(
      device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: token,
        parameters: { SerialNumber: 'SN-1' },
      }),
    )
  } finally {
    await device.close()
  }
}

const states = async (id: string) =>
  (await certificatesOf(bridge, id)).map((c) => [c.state, c.revocationReason ?? null])

describe('a pending certificate meets the other paths', () => {
  it("a device's own v1 registration is not refused by it, and revokes it (superseded): its token dies", async () => {
    const token = await pendingToken('device-001')
    const v1 = await register({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('device-001')),
      csr: true,
    })
    expect(v1.certificatePem).toBeTruthy()
    expect(await states('device-001')).toEqual([
      ['active', null],
      ['revoked', 'superseded'],
    ])
    expect(await registerThing('device-001', token)).toMatchObject({
      statusCode: 400,
      errorCode: 'InvalidCertificateOwnershipToken',
    })
  })

  it('a gateway batch item for the device (adopt) revokes it the same way', async () => {
    const token = await pendingToken('device-002')
    const gateway = await connectGateway(bridge, 'gateway-001')
    try {
      const replies = byDevice(
        await gateway.batch({ requestId: 'adopt', devices: [{ deviceId: 'device-002' }] }),
      )
      expect(replies.get('device-002')?.status).toBe('issued')
    } finally {
      await gateway.end()
    }
    expect(await states('device-002')).toEqual([
      ['active', null],
      ['revoked', 'superseded'],
    ])
    expect(await registerThing('device-002', token)).toMatchObject({ statusCode: 400 })
  })

  it('an activated certificate renews with protocol v1; a create call made with it is 403 AccessDenied', async () => {
    const device = await connectAwsDevice(bridge, 'device-003')
    let created: { certificatePem?: string; privateKey?: string; certificateOwnershipToken?: string }
    try {
      created = await device.identity.createKeysAndCertificate({})
      await device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: created.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-3' },
      })
    } finally {
      await device.close()
    }
    const files = {
      certFile: join(bridge.pki.stateDir, 'op.crt'),
      keyFile: join(bridge.pki.stateDir, 'op.key'),
    }
    await writeFile(files.certFile, created.certificatePem as string)
    await writeFile(files.keyFile, created.privateKey as string)
    const operational = await connectAwsDevice(bridge, 'device-003', { files })
    try {
      expect(await modeledErrorOf(operational.identity.createKeysAndCertificate({}))).toMatchObject({
        statusCode: 403,
        errorCode: 'AccessDenied',
      })
    } finally {
      await operational.close()
    }
    const renewed = await renew({ url: bridge.url, ...tlsFor(bridge, files), csr: true })
    expect(renewed.certificatePem).not.toBe(created.certificatePem)
    expect((await states('device-003'))[0]).toEqual(['active', null])
  })
})
