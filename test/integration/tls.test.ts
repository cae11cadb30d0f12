import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ConnectionOptions, connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls, register } from '../../src/client/index.js'
import { createDevPki, DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { tlsFor } from '../support/device.js'

let bridge: TestBridge
let caPem: string

beforeAll(async () => {
  bridge = await startTestBridge()
  caPem = readFileSync(bridge.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
})

afterAll(async () => {
  await bridge?.stop()
})

/** mqttOutcome tries a full MQTT CONNECT over TLS and says whether a session was established. */
async function mqttOutcome(tls: { certPem?: string; keyPem?: string }): Promise<'connected' | 'refused'> {
  try {
    const client = await connectTls(
      bridge.url,
      { certPem: tls.certPem ?? '', keyPem: tls.keyPem ?? '', caPem },
      5_000,
    )
    await client.endAsync(true)
    return 'connected'
  } catch {
    return 'refused'
  }
}

async function deviceTls(name: string, options: Parameters<TestBridge['pki']['makeDevice']>[1]) {
  return tlsFor(bridge, await bridge.pki.makeDevice(name, options))
}

describe('only verified factory certificates get an MQTT session', () => {
  it('a valid factory certificate connects (control)', async () => {
    expect(await mqttOutcome(tlsFor(bridge, bridge.pki.device('device-001')))).toBe('connected')
  })

  it('no client certificate', async () => {
    expect(await mqttOutcome({})).toBe('refused')
  })

  it('a certificate from an unknown CA', async () => {
    const other = await mkdtemp(join(tmpdir(), 'mrb-other-pki-'))
    await createDevPki(other)
    const dir = join(other, DEV_PKI_FILES.devicesDir)
    const tls = {
      certPem: readFileSync(join(dir, 'device-001.crt'), 'utf8'),
      keyPem: readFileSync(join(dir, 'device-001.key'), 'utf8'),
    }
    expect(await mqttOutcome(tls)).toBe('refused')
  })

  it('an operational certificate (issuing CA, not factory CA) when lifecycle.trustOperationalCa is false', async () => {
    const factoryOnly = await startTestBridge(['lifecycle.trustOperationalCa=false'])
    try {
      const tls = tlsFor(factoryOnly, factoryOnly.pki.device('device-002'))
      const issued = await register({ url: factoryOnly.url, ...tls })
      const operational = { certPem: issued.certificatePem, keyPem: issued.privateKeyPem, caPem: tls.caPem }
      await expect(connectTls(factoryOnly.url, operational, 5_000)).rejects.toThrow()
      // by default the listener trusts it, for renewal (test/integration/lifecycle.test.ts)
      const renewing = await register({ url: bridge.url, ...tlsFor(bridge, bridge.pki.device('device-002')) })
      expect(await mqttOutcome({ certPem: renewing.certificatePem, keyPem: renewing.privateKeyPem })).toBe(
        'connected',
      )
    } finally {
      await factoryOnly.stop()
    }
  })

  it('an expired certificate', async () => {
    const day = 24 * 3600_000
    const tls = await deviceTls('expired', {
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
    })
    expect(await mqttOutcome(tls)).toBe('refused')
  })

  it('a not-yet-valid certificate', async () => {
    const day = 24 * 3600_000
    const tls = await deviceTls('future', {
      notBefore: new Date(Date.now() + day),
      notAfter: new Date(Date.now() + 10 * day),
    })
    expect(await mqttOutcome(tls)).toBe('refused')
  })

  it('a self-signed certificate', async () => {
    expect(await mqttOutcome(await deviceTls('self-signed', { selfSigned: true }))).toBe('refused')
  })
})

describe('protocol versions', () => {
  function handshake(options: ConnectionOptions): Promise<string> {
    const tls = tlsFor(bridge, bridge.pki.device('device-001'))
    return new Promise((resolve) => {
      const socket = connect({
        host: 'localhost',
        port: bridge.port,
        key: tls.keyPem,
        cert: tls.certPem,
        ca: caPem,
        ...options,
      })
      socket.once('secureConnect', () => {
        resolve(socket.getProtocol() ?? 'unknown')
        socket.destroy()
      })
      socket.once('error', (err) => resolve(`error: ${err.message}`))
    })
  }

  it('TLS 1.2 and 1.3 are accepted', async () => {
    expect(await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })).toBe('TLSv1.2')
    expect(await handshake({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' })).toBe('TLSv1.3')
  })

  it('TLS 1.1 is refused by the server', async () => {
    const before = bridge.logs.length
    const outcome = await handshake({
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    })
    expect(outcome).toMatch(/^error/)
    // the server, not only the client's own policy, refused it
    const serverSaid = bridge.logs
      .slice(before)
      .map((line) => JSON.parse(line) as { msg: string; err?: string })
    expect(serverSaid).toContainEqual(
      expect.objectContaining({
        msg: 'TLS handshake failed',
        err: expect.stringMatching(/unsupported protocol/),
      }),
    )
  })
})
