import { writeFile } from 'node:fs/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { createTestPki } from '../support/pki.js'

// What outlives a process: a create call's answer replayed from the registry after a restart (a fresh token, the
// old one dead), a server-key retry without the reply cache (a new certificate; the pending one revoked), a
// RegisterThing after a restart; and the templates file reloaded while running (a bad version keeps the old one).

const bridges: TestBridge[] = []
afterAll(async () => {
  for (const b of bridges) await b.stop()
})

describe('AWS fleet provisioning across a restart', () => {
  it('CSR: the same request after a restart is the same certificate, with a fresh token; RegisterThing works with it', async () => {
    const pki = await createTestPki()
    const sets = ['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`]
    const { csr } = await opensslCsr('/CN=device-001')
    const before = await startTestBridge(sets, pki)
    const d1 = await connectAwsDevice(before, 'device-001')
    const first = await d1.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
    const lostKey = await connectAwsDevice(before, 'device-002')
    const keys = await lostKey.identity.createKeysAndCertificate({})
    await Promise.all([d1.close(), lostKey.close()])
    await before.stop()

    const after = await startTestBridge(sets, pki)
    bridges.push(after)
    const d2 = await connectAwsDevice(after, 'device-001')
    try {
      const again = await d2.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      expect(again.certificatePem).toBe(first.certificatePem)
      expect(again.certificateOwnershipToken).not.toBe(first.certificateOwnershipToken)
      const stale = await modeledErrorOf(
        d2.identity.registerThing({
          templateName: 'FleetTemplate',
          certificateOwnershipToken: first.certificateOwnershipToken as string,
          parameters: { SerialNumber: 'SN-1' },
        }),
      )
      expect(stale).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      await d2.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: again.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-1' },
      })
      expect((await certificatesOf(after, 'device-001')).map((c) => c.state)).toEqual(['active'])
    } finally {
      await d2.close()
    }
    // server key: the key was never recorded; the retry gets a new certificate and the pending one is revoked
    const d3 = await connectAwsDevice(after, 'device-002')
    try {
      const retry = await d3.identity.createKeysAndCertificate({})
      expect(retry.certificateId).not.toBe(keys.certificateId)
      expect((await certificatesOf(after, 'device-002')).map((c) => [c.state, c.revocationReason])).toEqual([
        ['pending', undefined],
        ['revoked', 'superseded'],
      ])
    } finally {
      await d3.close()
    }
  })

  it('the templates file is reloaded on change; a bad version is refused and the old one stays', async () => {
    const file = await writeTemplates()
    const bridge = await startTestBridge(['aws.enabled=true', `aws.templatesFile=${file}`])
    bridges.push(bridge)
    const device = await connectAwsDevice(bridge, 'device-003')
    try {
      const created = await device.identity.createKeysAndCertificate({})
      const refused = bridge.waitForLog('provisioning templates refused; keeping the old one')
      await writeFile(file, 'templates:\n  - name: "bad name!"\n    identities: []\n')
      await refused
      const request = (templateName: string) =>
        device.identity.registerThing({
          templateName,
          certificateOwnershipToken: created.certificateOwnershipToken as string,
          parameters: { SerialNumber: 'SN-3' },
        })
      expect(await modeledErrorOf(request('Renamed'))).toMatchObject({ statusCode: 404 })
      const reloaded = bridge.waitForLog('provisioning templates reloaded')
      await writeFile(
        file,
        "templates:\n  - name: Renamed\n    identities: ['device-003']\n    thingName: 'thing-{identity}'\n",
      )
      await reloaded
      expect(await request('Renamed')).toEqual({ thingName: 'thing-device-003', deviceConfiguration: {} })
    } finally {
      await device.close()
    }
  })
})
