import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerDevices } from '../../src/client/register-devices.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { tlsFor } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import { bundleOf, opened, passwordsFound } from '../support/pkcs12.js'

// PKCS#12 bundles for a gateway's devices: a batch entry asks for one; its retry is rewrapped; bad entries refuse
// the batch; and no password anywhere the bridge writes.

let bridge: TestBridge
const passwords: string[] = []
const pw = (tag: string): string => {
  const password = `gateway-pässword-${tag}-${passwords.length}`
  passwords.push(password)
  return password
}

beforeAll(async () => {
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  bridge = await startTestBridge([`gateways.policyFile=${policy}`])
})

afterAll(async () => {
  await bridge?.stop()
})

describe('gateway batches', () => {
  it('a batch entry may ask for a bundle; CSR and PEM entries beside it are unchanged; a retry is rewrapped', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const [a, b] = [pw('sensor-a'), pw('sensor-b')]
    const csr = (await opensslCsr('/CN=gateway-001-sensor-3')).csr
    const devices = [
      { deviceId: 'gateway-001-sensor-1', pkcs12: { password: a } },
      { deviceId: 'gateway-001-sensor-2' },
      { deviceId: 'gateway-001-sensor-3', csr },
    ]
    const replies = byDevice(await gateway.batch({ requestId: 'gb-1', devices }))
    const one = replies.get('gateway-001-sensor-1') as unknown as IssuedReply
    await opened(bundleOf({ ...one, status: 'issued' }), a, one.certificate)
    expect(replies.get('gateway-001-sensor-2')?.privateKey).toMatch(/BEGIN PRIVATE KEY/)
    expect(replies.get('gateway-001-sensor-3')).toMatchObject({ status: 'issued' })
    expect(replies.get('gateway-001-sensor-3')?.pkcs12).toBeUndefined()

    // the same batch again with another password: the same certificate, in a bundle only the new password opens
    const retry = byDevice(
      await gateway.batch({
        requestId: 'gb-1',
        devices: [{ ...devices[0], pkcs12: { password: b } }, ...devices.slice(1)],
      }),
    )
    const again = retry.get('gateway-001-sensor-1') as unknown as IssuedReply
    expect(again.serialNumber).toBe(one.serialNumber)
    await opened(bundleOf({ ...again, status: 'issued' }), b, one.certificate)
    await gateway.end()
  })

  it('a bad password or a bundle with a CSR refuses the whole batch; nothing is issued', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const csr = (await opensslCsr('/CN=gateway-001-sensor-5')).csr
    for (const entry of [{ pkcs12: { password: 'short' } }, { csr, pkcs12: { password: 'long-enough-3' } }]) {
      const replies = await gateway.batch({
        requestId: 'gb-bad',
        devices: [{ deviceId: 'gateway-001-sensor-4' }, { deviceId: 'gateway-001-sensor-5', ...entry }],
      })
      expect(replies).toEqual([
        expect.objectContaining({
          status: 'rejected',
          error: expect.objectContaining({ code: 'MALFORMED_REQUEST' }),
        }),
      ])
      expect(replies[0]?.deviceId).toBeUndefined()
    }
    await gateway.end()
  })

  it('the client library and its outcome: registerDevices with pkcs12Password', async () => {
    const password = pw('lib')
    const [outcome] = await registerDevices({
      url: bridge.url,
      ...tlsFor(bridge, bridge.pki.device('gateway-001')),
      devices: [{ deviceId: 'gateway-001-sensor-6', pkcs12Password: password }],
    })
    if (outcome?.status !== 'issued') throw new Error(`not issued: ${JSON.stringify(outcome)}`)
    expect(outcome.credentials.privateKeyPem).toBeUndefined()
    await opened(outcome.credentials.pkcs12 as Buffer, password, outcome.credentials.certificatePem)
  })
})

describe('no password anywhere the bridge writes', () => {
  it('not in a log line or any file of the state directory', async () => {
    expect(passwords.length).toBeGreaterThan(2)
    expect(await passwordsFound(bridge, passwords)).toEqual([])
  })
})
