import { afterAll, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import { createTestPki } from '../support/pki.js'

// CBOR answers replayed from the registry after a restart (the reply cache is gone with the process): a device's
// CSR-mode request, and a gateway batch's CSR-mode device, each retried in CBOR — and in JSON, the same request.

const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64')
const serialOf = (reply: unknown): unknown => (reply as { serialNumber?: string } | undefined)?.serialNumber

let after: TestBridge | undefined
afterAll(() => after?.stop())

it('after a restart, CBOR retries (a device, a gateway batch) get the recorded certificates from the registry', async () => {
  const pki = await createTestPki()
  await pki.makeDevice('device-007')
  const policy = await writePolicy(
    'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
  )
  const sets = [`gateways.policyFile=${policy}`]
  const deviceCsr = der((await opensslCsr('/CN=device-007')).csr)
  const sensorCsr = (await opensslCsr('/CN=gateway-001-sensor-1')).csr
  const batch = { requestId: 'across', devices: [{ deviceId: 'gateway-001-sensor-1', csr: der(sensorCsr) }] }

  const before = await startTestBridge(sets, pki)
  const device = await connectDevice(before, 'device-007', { format: 'cbor' })
  await device.send({ requestId: 'across', csr: deviceCsr })
  const first = await device.nextReply()
  expect(first).toMatchObject({ status: 'issued' })
  const gateway = await connectGateway(before, 'gateway-001', 'cbor')
  const sensor = byDevice(await gateway.batch(batch)).get('gateway-001-sensor-1')
  expect(sensor).toMatchObject({ status: 'issued' })
  await Promise.all([device.end(), gateway.end()])
  await before.stop()

  after = await startTestBridge(sets, pki)
  const retry = await connectDevice(after, 'device-007', { format: 'cbor' })
  await retry.send({ requestId: 'across', csr: deviceCsr })
  expect(serialOf(await retry.nextReply())).toBe(serialOf(first))
  const again = await connectGateway(after, 'gateway-001', 'cbor')
  expect(serialOf(byDevice(await again.batch(batch)).get('gateway-001-sensor-1'))).toBe(serialOf(sensor))
  // the same batch in JSON, its CSR as PEM, is the same request too
  const json = await connectGateway(after, 'gateway-001')
  const asJson = { requestId: 'across', devices: [{ deviceId: 'gateway-001-sensor-1', csr: sensorCsr }] }
  expect(serialOf(byDevice(await json.batch(asJson)).get('gateway-001-sensor-1'))).toBe(serialOf(sensor))
  await Promise.all([retry.end(), again.end(), json.end()])
})
