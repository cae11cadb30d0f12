import { X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'

/**
 * DNS SANs made from identities: every certificate carries only RFC 1123 names, and no two owners can hold the
 * same name through identities that differ only in case (DNS names are lower-cased).
 */
let bridge: TestBridge

beforeAll(async () => {
  const policy = await writePolicy(`
gateways:
  - match: gateway-00*
    devices: { patterns: ["shared-*"] }
`)
  bridge = await startTestBridge([
    `gateways.policyFile=${policy}`,
    'certificate.dnsNames={deviceId}.example.com',
  ])
  await bridge.pki.makeDevice('gateway-002')
  await bridge.pki.makeDevice('plain_device')
})

afterAll(async () => {
  await bridge?.stop()
})

describe('DNS names made from identities', () => {
  it('a deviceId that makes a malformed DNS name is refused NOT_AUTHORIZED; a valid one is issued', async () => {
    const gateway = await connectGateway(bridge, 'gateway-001')
    const ids = ['shared-dot.', 'shared-dot..x', 'shared-under_score', 'shared-dash-', 'shared-fine.sub']
    const replies = byDevice(
      await gateway.batch({ requestId: 'dots', devices: ids.map((deviceId) => ({ deviceId })) }),
    )
    await gateway.end()
    for (const id of ids.slice(0, 4)) {
      expect(replies.get(id), id).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED' } })
      expect(replies.get(id), id).toMatchObject({
        error: { message: expect.stringMatching(/not a valid DNS name/) },
      })
    }
    const fine = replies.get('shared-fine.sub')
    expect(fine?.status).toBe('issued')
    const cert = new X509Certificate(String(fine?.certificate))
    expect(cert.subjectAltName).toBe('DNS:shared-fine.sub.example.com')
  })

  it('a device whose own identity makes a malformed DNS name is refused, nothing issued', async () => {
    const before = (await bridge.auditLines()).length
    const device = await connectDevice(bridge, 'plain_device')
    await device.send({ requestId: 'underscore' })
    const reply = await device.nextReply()
    await device.end()
    expect(reply).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED', retryable: false } })
    expect((await bridge.auditLines()).length).toBe(before)
  })

  it('two gateways cannot hold the same DNS name through deviceIds that differ only in case', async () => {
    const first = await connectGateway(bridge, 'gateway-001')
    const mine = byDevice(await first.batch({ requestId: 'lower', devices: [{ deviceId: 'shared-case-x' }] }))
    await first.end()
    expect(mine.get('shared-case-x')?.status).toBe('issued')
    const second = await connectGateway(bridge, 'gateway-002')
    const theirs = byDevice(
      await second.batch({ requestId: 'upper', devices: [{ deviceId: 'shared-case-X' }] }),
    )
    await second.end()
    expect(theirs.get('shared-case-X')).toMatchObject({
      status: 'rejected',
      error: { code: 'NOT_AUTHORIZED' },
    })
    expect(theirs.get('shared-case-X')).toMatchObject({
      error: { message: expect.stringMatching(/lower case/) },
    })
  })
})
