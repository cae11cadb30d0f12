import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/index.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, type TestDevice, tlsFor } from '../support/device.js'
import { connectGateway, writePolicy } from '../support/gateway.js'
import { startKubeWorld } from '../support/kube-bridge.js'
import { type Scrape, scrapeMetrics } from '../support/metrics.js'
import { rawConnect } from '../support/raw-mqtt.js'

const P = 'mqtt_registration_bridge_'
let bridge: TestBridge
let healthPort: number

beforeAll(async () => {
  bridge = await startTestBridge([
    'registration.rateLimit.burst=3',
    'registration.rateLimit.perMinute=0.001',
    'registration.allowedKeyAlgorithms=ECDSA-P256',
  ])
  healthPort = bridge.bridge.healthPort as number
})

afterAll(async () => {
  await bridge?.stop()
})

async function ask(device: TestDevice, payload: string | object): Promise<string> {
  await device.send(payload)
  const reply = await device.nextReply()
  return reply.status === 'rejected' ? reply.error.code : reply.status
}

/** until scrapes until `predicate` holds: the broker sees a connection close after the client does. */
async function until(predicate: (s: Scrape) => boolean): Promise<Scrape> {
  for (;;) {
    const s = await scrapeMetrics(healthPort)
    if (predicate(s)) return s
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('/metrics after a scripted mix of registrations', () => {
  it('counts each outcome exactly once, by code, mode and issuer, without identities', async () => {
    const before = await scrapeMetrics(healthPort)
    expect(before.sample(`${P}registrations_in_flight`)).toBe(0)
    expect(before.sample(`${P}tls_handshake_failures_total`)).toBe(0)

    // issued (server key), then the same request again: replayed from the reply cache
    const one = await connectDevice(bridge, 'device-001')
    expect(await ask(one, { requestId: 'a', keyAlgorithm: 'ECDSA-P256' })).toBe('issued')
    expect(await ask(one, { requestId: 'a', keyAlgorithm: 'ECDSA-P256' })).toBe('issued')
    await one.end()
    // issued (CSR)
    const two = await connectDevice(bridge, 'device-002')
    const { csr } = await opensslCsr('/CN=device-002')
    expect(await ask(two, { requestId: 'c', csr })).toBe('issued')
    await two.end()
    // rejected: not JSON (mode unknown), and a key algorithm the policy does not allow
    const three = await connectDevice(bridge, 'device-003')
    expect(await ask(three, 'not json')).toBe('MALFORMED_REQUEST')
    expect(await ask(three, { requestId: 'r', keyAlgorithm: 'RSA-2048' })).toBe('KEY_NOT_ALLOWED')
    await three.end()
    // rate limited: a burst of 3, the 4th distinct request is refused (the 2nd and 3rd are re-registrations the
    // default policy refuses, and spend tokens all the same)
    const four = await connectDevice(bridge, 'device-004')
    expect(await ask(four, { requestId: '1' })).toBe('issued')
    for (const id of ['2', '3']) expect(await ask(four, { requestId: id })).toBe('NOT_AUTHORIZED')
    expect(await ask(four, { requestId: '4' })).toBe('RATE_LIMITED')
    // refused connections: a TLS handshake with a self-signed certificate, a CONNECT with a will, an over-long id
    const selfSigned = tlsFor(bridge, await bridge.pki.makeDevice('self-signed', { selfSigned: true }))
    await expect(connectTls(bridge.url, selfSigned, 5_000)).rejects.toThrow()
    const withWill = await rawConnect(bridge, 'device-005')
    withWill.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'will',
      keepalive: 30,
      will: { topic: 'registration/request', payload: Buffer.from('x'), qos: 0, retain: false },
    } as mqttPacket.IConnectPacket)
    expect(await withWill.nextPacket()).toMatchObject({ cmd: 'connack', returnCode: 5 })
    const longId = await rawConnect(bridge, 'device-005')
    expect(await longId.connect('x'.repeat(129))).toMatchObject({ cmd: 'connack', returnCode: 2 })

    const s = await until((m) => m.sample(`${P}connections_open`) === 1) // only device-004 is still connected
    await four.end()
    const reg = (outcome: string, mode: string, code = ''): number | undefined =>
      s.sample(`${P}registrations_total`, { outcome, code, mode, issuer: 'local-ca', via: 'device' })
    expect(reg('issued', 'server_key')).toBe(2)
    expect(reg('issued', 'csr')).toBe(1)
    expect(reg('replayed', 'server_key')).toBe(1)
    expect(reg('rejected', '', 'MALFORMED_REQUEST')).toBe(1)
    expect(reg('rejected', 'server_key', 'KEY_NOT_ALLOWED')).toBe(1)
    expect(reg('rejected', 'server_key', 'NOT_AUTHORIZED')).toBe(2)
    expect(reg('rejected', 'server_key', 'RATE_LIMITED')).toBe(1)
    // every other series of the counter is there (metrics-initial.test.ts) and still 0
    expect(s.text.match(new RegExp(`^${P}registrations_total\\{.* (?!0$)\\S+$`, 'gm'))).toHaveLength(7)
    expect(s.sample(`${P}rate_limited_requests_total`)).toBe(1)
    expect(s.sample(`${P}registration_duration_seconds_count`, { outcome: 'issued' })).toBe(3)
    expect(s.sample(`${P}registration_duration_seconds_count`, { outcome: 'rejected' })).toBe(5)
    expect(s.sample(`${P}issuance_duration_seconds_count`, { issuer: 'local-ca', result: 'ok' })).toBe(3)
    expect(s.sample(`${P}audit_append_duration_seconds_count`)).toBe(3)
    expect(s.sample(`${P}registrations_in_flight`)).toBe(0)
    expect(s.sample(`${P}reply_cache_entries`)).toBe(3)
    expect(s.sample(`${P}tls_handshake_failures_total`)).toBe(1)
    expect(s.sample(`${P}connections_refused_total`, { reason: 'not_authorized' })).toBe(1)
    expect(s.sample(`${P}connections_refused_total`, { reason: 'identifier_rejected' })).toBe(1)
    expect(s.sample(`${P}ready`)).toBe(1)
    // no identity, client id or serial number in any label
    for (const secret of ['device-00', 'will', 'xxxx', 'self-signed']) expect(s.text).not.toContain(secret)
    withWill.close()
    longId.close()
  })

  it('exports the certificates’ notAfter as Unix times, and Node’s process metrics', async () => {
    const s = await scrapeMetrics(healthPort)
    const notAfter = (file: string) =>
      new Date(new X509Certificate(readFileSync(bridge.pki.file(file))).validTo)
    expect(s.sample(`${P}certificate_expiry_timestamp_seconds`, { certificate: 'listener' })).toBe(
      notAfter(DEV_PKI_FILES.serverCert).getTime() / 1000,
    )
    expect(s.sample(`${P}certificate_expiry_timestamp_seconds`, { certificate: 'issuing_ca' })).toBe(
      notAfter(DEV_PKI_FILES.issuingCaCert).getTime() / 1000,
    )
    expect(s.families).toContain('process_cpu_seconds_total')
    expect(s.families).toContain('nodejs_eventloop_lag_p99_seconds')
  })
})

describe('gateway batches', () => {
  it('count each downstream device once, with via="gateway"', async () => {
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const gw = await startTestBridge([`gateways.policyFile=${policy}`])
    try {
      const gateway = await connectGateway(gw, 'gateway-001')
      const batch = {
        requestId: 'metrics',
        devices: [{ deviceId: 'gateway-001-sensor-1' }, { deviceId: 'someone-else' }],
      }
      await gateway.batch(batch)
      await gateway.batch(batch) // the issued device is replayed, the other refused again
      await gateway.end()
      const s = await scrapeMetrics(gw.bridge.healthPort as number)
      const reg = (outcome: string, code = ''): number | undefined =>
        s.sample(`${P}registrations_total`, {
          outcome,
          code,
          mode: 'server_key',
          issuer: 'local-ca',
          via: 'gateway',
        })
      expect(reg('issued')).toBe(1)
      expect(reg('replayed')).toBe(1)
      expect(reg('rejected', 'NOT_AUTHORIZED')).toBe(2)
    } finally {
      await gw.stop()
    }
  })
})

describe('health.metrics=false', () => {
  it('serves no /metrics', async () => {
    const off = await startTestBridge(['health.metrics=false'])
    try {
      const res = await fetch(`http://127.0.0.1:${off.bridge.healthPort}/metrics`)
      expect(res.status).toBe(404)
    } finally {
      await off.stop()
    }
  })
})

describe('cert-manager mode', () => {
  it('counts API writes by verb and status, and watch restarts by resource', async () => {
    const world = await startKubeWorld()
    try {
      world.api.faults.push({ verb: 'list', resource: 'secrets', status: 503, times: 1 })
      world.api.faults.push({ verb: 'create', resource: 'certificates', status: 503, times: 1 })
      const cm = await world.startBridge()
      try {
        const device = await connectDevice(cm, 'device-001')
        expect(await ask(device, { requestId: 'k', keyAlgorithm: 'ECDSA-P256' })).toBe('issued')
        await device.end()
        const s = await scrapeMetrics(cm.bridge.healthPort as number)
        expect(s.sample(`${P}kubernetes_api_requests_total`, { verb: 'create', status: '503' })).toBe(1)
        expect(s.sample(`${P}kubernetes_api_requests_total`, { verb: 'create', status: '2xx' })).toBe(1)
        expect(s.sample(`${P}kubernetes_watch_restarts_total`, { resource: 'secrets' })).toBe(1)
        expect(s.sample(`${P}kubernetes_watch_restarts_total`, { resource: 'certificates' })).toBeUndefined()
        expect(
          s.sample(`${P}registrations_total`, {
            outcome: 'issued',
            code: '',
            mode: 'server_key',
            issuer: 'cert-manager',
            via: 'device',
          }),
        ).toBe(1)
      } finally {
        await cm.stop()
      }
    } finally {
      await world.close()
    }
  })
})
