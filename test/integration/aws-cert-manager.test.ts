import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice } from '../support/aws-sdk.js'
import type { TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { type KubeWorld, startKubeWorld } from '../support/kube-bridge.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'

// The official SDK's fleet-provisioning flow through cert-manager (the Kubernetes API and cert-manager emulated):
// both create calls, RegisterThing, and the certificates connect to the production mosquitto. With cert-manager the
// bridge writes no CRL: the registry's state is the record of a pending certificate (docs/aws-fleet-provisioning.md).

let world: KubeWorld
let bridge: TestBridge
let production: Mosquitto

beforeAll(async () => {
  world = await startKubeWorld()
  bridge = await world.startBridge(['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`])
  production = await startMosquitto({
    cafile: world.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: world.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: world.pki.file(DEV_PKI_FILES.serverKey),
  })
})

afterAll(async () => {
  await bridge?.stop()
  await production?.stop()
  await world?.close()
})

async function connectsToProduction(certPem: string, keyPem: string): Promise<boolean> {
  const caPem = await readFile(world.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  const client = await connectTls(production.url, { certPem, keyPem, caPem }, 5_000)
  await client.endAsync(true)
  return true
}

describe('AWS fleet provisioning through cert-manager, with the official SDK', () => {
  it('CreateKeysAndCertificate then RegisterThing; the certificate connects to production mosquitto', async () => {
    const device = await connectAwsDevice(bridge, 'device-001')
    try {
      const created = await device.identity.createKeysAndCertificate({})
      expect((await certificatesOf(bridge, 'device-001'))[0]).toMatchObject({
        state: 'pending',
        issuer: 'cert-manager',
      })
      const registered = await device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: created.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-1' },
      })
      expect(registered.thingName).toBe('device-001')
      expect((await certificatesOf(bridge, 'device-001'))[0]?.state).toBe('active')
      expect(await connectsToProduction(created.certificatePem as string, created.privateKey as string)).toBe(
        true,
      )
    } finally {
      await device.close()
    }
  })

  it('CreateCertificateFromCsr then RegisterThing; the certificate connects to production mosquitto', async () => {
    const { csr, keyFile } = await opensslCsr('/CN=device-002')
    const device = await connectAwsDevice(bridge, 'device-002')
    try {
      const created = await device.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      await device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: created.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-2' },
      })
      expect((await certificatesOf(bridge, 'device-002'))[0]?.state).toBe('active')
      expect(
        await connectsToProduction(created.certificatePem as string, await readFile(keyFile, 'utf8')),
      ).toBe(true)
    } finally {
      await device.close()
    }
  })
})
