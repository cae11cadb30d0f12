import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { hookSettings, type RunningHook, startTestHook } from '../support/hook.js'
import { createTestPki } from '../support/pki.js'

// The bridge's own rules on the AWS topics, through the official SDK: the registration hook is asked at the create
// call (once per new issuance; never at RegisterThing) and its deny is 403 AccessDenied; the deny list in force
// refuses RegisterThing too.

const bridges: TestBridge[] = []
const hooks: RunningHook[] = []
afterAll(async () => {
  for (const b of bridges) await b.stop()
  for (const h of hooks) await h.close()
})

describe('the registration hook and the deny list on the AWS topics', () => {
  it('the hook decides at the create call: a deny is 403 AccessDenied; RegisterThing does not ask it', async () => {
    const pki = await createTestPki()
    const hook = await startTestHook(pki, { inventory: { devices: { 'device-001': {} } } })
    hooks.push(hook)
    const bridge = await startTestBridge(
      hookSettings(hook, pki, ['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`]),
      pki,
    )
    bridges.push(bridge)
    const denied = await connectAwsDevice(bridge, 'device-002')
    try {
      const refusal = await modeledErrorOf(denied.identity.createKeysAndCertificate({}))
      expect(refusal).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' })
      expect(String(refusal.errorMessage)).toContain('not in the inventory')
      expect(await certificatesOf(bridge, 'device-002')).toEqual([])
    } finally {
      await denied.close()
    }
    const allowed = await connectAwsDevice(bridge, 'device-001')
    try {
      const created = await allowed.identity.createKeysAndCertificate({})
      const asked = hook.calls.length
      expect(hook.calls.at(-1)).toMatchObject({ identity: 'device-001', kind: 'registration', api: 'aws' })
      await allowed.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: created.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-1' },
      })
      expect(hook.calls.length).toBe(asked)
    } finally {
      await allowed.close()
    }
  })

  it('the deny list in force refuses RegisterThing (403 AccessDenied); the certificate stays pending', async () => {
    const pki = await createTestPki()
    const denyFile = join(pki.stateDir, 'deny.yaml')
    await writeFile(denyFile, 'identities: []\n')
    const bridge = await startTestBridge(
      [
        'aws.enabled=true',
        `aws.templatesFile=${await writeTemplates()}`,
        `lifecycle.denyListFile=${denyFile}`,
      ],
      pki,
    )
    bridges.push(bridge)
    const device = await connectAwsDevice(bridge, 'device-003')
    try {
      const created = await device.identity.createKeysAndCertificate({})
      const reloaded = bridge.waitForLog('deny list reloaded')
      await writeFile(denyFile, 'identities: [device-003]\n')
      await reloaded
      const refusal = await modeledErrorOf(
        device.identity.registerThing({
          templateName: 'FleetTemplate',
          certificateOwnershipToken: created.certificateOwnershipToken as string,
          parameters: { SerialNumber: 'SN-3' },
        }),
      )
      expect(refusal).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' })
      expect((await certificatesOf(bridge, 'device-003'))[0]?.state).toBe('pending')
      // and the create call too (the deny list step of the pipeline)
      expect(await modeledErrorOf(device.identity.createKeysAndCertificate({}))).toMatchObject({
        statusCode: 403,
        errorCode: 'AccessDenied',
      })
    } finally {
      await device.close()
    }
  })
})
