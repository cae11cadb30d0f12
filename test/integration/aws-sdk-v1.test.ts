import { iotidentity, mqtt } from 'aws-iot-device-sdk-v2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'

// The SDK's older IotIdentityClient (the deprecated sample, still shipped): explicit subscribe, then publish; its
// RegisterThing body carries `templateName`, which the bridge ignores. And the metrics of the flow.

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge(['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`])
})
afterAll(() => bridge.stop())

/** answer subscribes to an API's accepted and rejected topics and resolves with the first answer. */
function answer<T>(
  subscribe: (
    qos: mqtt.QoS,
    accepted: (error?: unknown, response?: T) => void,
    rejected: (error?: unknown, response?: unknown) => void,
  ) => Promise<void>,
): { ready: Promise<void>; result: Promise<{ ok: boolean; body: unknown }> } {
  let resolve: (r: { ok: boolean; body: unknown }) => void = () => {}
  const result = new Promise<{ ok: boolean; body: unknown }>((r) => {
    resolve = r
  })
  const ready = subscribe(
    mqtt.QoS.AtLeastOnce,
    (_e, body) => resolve({ ok: true, body }),
    (_e, body) => resolve({ ok: false, body }),
  )
  return { ready, result }
}

describe('the deprecated IotIdentityClient', () => {
  it('CreateKeysAndCertificate then RegisterThing (templateName in the body); counted in the metrics', async () => {
    const device = await connectAwsDevice(bridge, 'device-001')
    try {
      const identity = new iotidentity.IotIdentityClient(device.connection)
      const keys = answer<iotidentity.model.CreateKeysAndCertificateResponse>(async (qos, ok, no) => {
        await identity.subscribeToCreateKeysAndCertificateAccepted({}, qos, ok)
        await identity.subscribeToCreateKeysAndCertificateRejected({}, qos, no)
      })
      await keys.ready
      await identity.publishCreateKeysAndCertificate({}, mqtt.QoS.AtLeastOnce)
      const created = await keys.result
      expect(created.ok).toBe(true)
      const token = (created.body as iotidentity.model.CreateKeysAndCertificateResponse)
        .certificateOwnershipToken
      const templateName = 'FleetTemplate'
      const registered = answer<iotidentity.model.RegisterThingResponse>(async (qos, ok, no) => {
        await identity.subscribeToRegisterThingAccepted({ templateName }, qos, ok)
        await identity.subscribeToRegisterThingRejected({ templateName }, qos, no)
      })
      await registered.ready
      await identity.publishRegisterThing(
        { templateName, certificateOwnershipToken: token as string, parameters: { SerialNumber: 'SN-1' } },
        mqtt.QoS.AtLeastOnce,
      )
      expect(await registered.result).toEqual({
        ok: true,
        body: { thingName: 'device-001', deviceConfiguration: { site: 'factory-1', serial: 'SN-1' } },
      })
    } finally {
      await device.close()
    }
    const metrics = await (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/metrics`)).text()
    expect(metrics).toMatch(
      /mqtt_registration_bridge_registrations_total\{[^}]*outcome="issued"[^}]*via="aws"[^}]*\} 1/,
    )
    expect(metrics).toContain('mqtt_registration_bridge_aws_register_thing_total{outcome="activated"} 1')
  })
})
