import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renew } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply, Reply } from '../../src/protocol/messages.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, mosquittoArgs } from '../support/device.js'
import { byDevice, connectGateway, writePolicy } from '../support/gateway.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { start } from '../support/process.js'
import { run } from '../support/tools.js'

/**
 * A retry is the same request and nothing else: the same identity, requestId and content once defaults are
 * applied. A request that only reuses a requestId is a new request, judged by the re-registration policy — here
 * the product default, `refuse` — on every path that answers from an earlier issuance: the reply cache, the issued
 * index after a restart, the registry, and renewals.
 */
let pki: TestPki
let bridge: TestBridge
const bridges: TestBridge[] = []

async function started(sets: string[] = []): Promise<TestBridge> {
  const b = await startTestBridge(sets, pki)
  bridges.push(b)
  return b
}

beforeAll(async () => {
  pki = await createTestPki()
  bridge = await started()
})

afterAll(async () => {
  for (const b of bridges) await b.stop()
})

async function ask(b: TestBridge, id: string, request: object): Promise<Reply> {
  const device = await connectDevice(b, id)
  await device.send(request)
  const reply = await device.nextReply()
  await device.end()
  return reply
}

const refused = { status: 'rejected', error: { code: 'NOT_AUTHORIZED' } }

async function certificatesOf(b: TestBridge, id: string) {
  const registry = new SqliteRegistry(b.bridge.config.registry.file, { readonly: true })
  try {
    return (await registry.device(id))?.certificates ?? []
  } finally {
    await registry.close()
  }
}

describe('a reused requestId with other content is a new request', () => {
  it('CSR mode, with mosquitto_pub: another key under the same requestId gets nothing; the same CSR is replayed', async () => {
    const id = 'hash-csr'
    await pki.makeDevice(id)
    const a = await opensslCsr(`/CN=${id}`)
    const b = await opensslCsr(`/CN=${id}`)
    const first = (await ask(bridge, id, { requestId: 'c1', csr: a.csr })) as IssuedReply
    expect(first.status).toBe('issued')

    // the report's reproduction: a tester with a copy of the factory key, the same requestId, their own key
    const creds = mosquittoArgs({ port: bridge.port, pki }, id)
    const sub = start('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...creds,
      '-d',
      '-q',
      '1',
      '-t',
      `registration/${id}/reply`,
      '-C',
      '1',
      '-W',
      '20',
    ])
    await sub.waitFor(/received SUBACK/)
    const payload = JSON.stringify({ requestId: 'c1', csr: b.csr })
    expect(
      (await run('mosquitto_pub', [...creds, '-q', '1', '-t', 'registration/request', '-m', payload])).code,
    ).toBe(0)
    expect(await sub.exited).toBe(0)
    const line = sub
      .output()
      .split('\n')
      .find((l) => l.startsWith('{')) as string
    expect(JSON.parse(line)).toMatchObject({ ...refused, requestId: 'c1' })

    // the real retry: the same CSR, as PEM or as its bare base64 DER, is one request
    const der = a.csr.replace(/-----[A-Z ]+-----|\s/g, '')
    for (const csr of [a.csr, der]) {
      expect(await ask(bridge, id, { requestId: 'c1', csr })).toMatchObject({
        status: 'issued',
        serialNumber: first.serialNumber,
      })
    }
    const certs = await certificatesOf(bridge, id)
    expect(certs.map((c) => [c.serialNumber, c.state])).toEqual([[first.serialNumber, 'active']])
  })

  it('server-key mode: another keyAlgorithm under the same requestId gets nothing; the default spelled out is the same request', async () => {
    const id = 'hash-server-key'
    await pki.makeDevice(id)
    const first = (await ask(bridge, id, { requestId: 'c1' })) as IssuedReply
    expect(first.status).toBe('issued')
    expect(await ask(bridge, id, { requestId: 'c1', keyAlgorithm: 'Ed25519' })).toMatchObject(refused)
    // registration.defaultKeyAlgorithm is ECDSA-P256: spelled out, it is the very same request
    expect(await ask(bridge, id, { requestId: 'c1', keyAlgorithm: 'ECDSA-P256' })).toMatchObject({
      status: 'issued',
      serialNumber: first.serialNumber,
      privateKey: first.privateKey,
    })
    expect((await certificatesOf(bridge, id)).map((c) => c.state)).toEqual(['active'])
  })

  it('the registry stores the request hash with every certificate, the same as the audit record', async () => {
    const id = 'hash-recorded'
    await pki.makeDevice(id)
    const issued = (await ask(bridge, id, { requestId: 'rec' })) as IssuedReply
    const [cert] = await certificatesOf(bridge, id)
    const audit = (await bridge.auditLines())
      .map((l) => JSON.parse(l) as { serialNumber: string; requestHash?: string })
      .find((r) => r.serialNumber === issued.serialNumber)
    expect(cert?.requestHash).toMatch(/^[0-9a-f]{64}$/)
    expect(cert?.requestHash).toBe(audit?.requestHash)
  })
})

describe('after a restart (issued index and registry)', () => {
  it('a reused requestId with another CSR is still refused; the same CSR is replayed', async () => {
    const id = 'hash-restart-csr'
    await pki.makeDevice(id)
    const a = await opensslCsr(`/CN=${id}`)
    const before = await started()
    const first = (await ask(before, id, { requestId: 'c1', csr: a.csr })) as IssuedReply
    await before.stop()
    const after = await started()
    const other = await opensslCsr(`/CN=${id}`)
    expect(await ask(after, id, { requestId: 'c1', csr: other.csr })).toMatchObject(refused)
    expect(await ask(after, id, { requestId: 'c1', csr: a.csr })).toMatchObject({
      status: 'issued',
      serialNumber: first.serialNumber,
    })
  })

  it('server-key: the retry of the same request (its key lost) replaces it; another keyAlgorithm is refused', async () => {
    const id = 'hash-restart-key'
    await pki.makeDevice(id)
    const before = await started()
    const first = (await ask(before, id, { requestId: 'k1', keyAlgorithm: 'ECDSA-P256' })) as IssuedReply
    await before.stop()
    const after = await started()
    expect(await ask(after, id, { requestId: 'k1', keyAlgorithm: 'Ed25519' })).toMatchObject(refused)
    // `{"requestId":"k1"}` is the same request as the one with the default spelled out
    const retry = (await ask(after, id, { requestId: 'k1' })) as IssuedReply
    expect(retry.status).toBe('issued')
    expect(retry.serialNumber).not.toBe(first.serialNumber)
    const certs = await certificatesOf(after, id)
    expect(certs.map((c) => [c.serialNumber, c.state, c.supersededBy])).toEqual([
      [retry.serialNumber, 'active', undefined],
      [first.serialNumber, 'superseded', retry.serialNumber],
    ])
  })
})

describe('a gateway batch', () => {
  it('retried with the default keyAlgorithm spelled out (or left out again) replays the same certificate', async () => {
    const policy = await writePolicy(
      'gateways:\n  - match: gateway-001\n    devices: { patterns: ["{gateway}-sensor-*"] }\n',
    )
    const b = await started([`gateways.policyFile=${policy}`])
    const ask = async (entry: object) => {
      const gateway = await connectGateway(b, 'gateway-001')
      const replies = await gateway.batch({
        requestId: 'R3',
        devices: [{ deviceId: 'gateway-001-sensor-r3', ...entry }],
      })
      await gateway.end()
      return byDevice(replies).get('gateway-001-sensor-r3')
    }
    const first = await ask({})
    expect(first?.status).toBe('issued')
    for (const entry of [{ keyAlgorithm: 'ECDSA-P256' }, {}]) {
      expect(await ask(entry)).toMatchObject({ status: 'issued', serialNumber: first?.serialNumber })
    }
    // another key under the same batch requestId is another request: the owning gateway renews the device
    const other = await ask({ keyAlgorithm: 'Ed25519' })
    expect(other?.serialNumber).not.toBe(first?.serialNumber)
  })
})

describe('renewal', () => {
  it("a factory request with a renewal's requestId and content is not that renewal", async () => {
    const b = await started(['lifecycle.renewal.windowFraction=1'])
    const id = 'hash-renewal'
    await pki.makeDevice(id)
    const csr = await opensslCsr(`/CN=${id}`)
    const first = (await ask(b, id, { requestId: 'r1', csr: csr.csr })) as IssuedReply
    const renewed = await renew({
      url: b.url,
      certPem: first.certificate,
      keyPem: await readFile(csr.keyFile, 'utf8'),
      caPem: await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
      requestId: 'n1',
      timeoutMs: 10_000,
    })
    expect(renewed.serialNumber).not.toBe(first.serialNumber)
    // the renewal's requestId, from the factory certificate: another scope, so another request
    expect(await ask(b, id, { requestId: 'n1' })).toMatchObject(refused)
    expect((await certificatesOf(b, id))[0]?.serialNumber).toBe(renewed.serialNumber)
  })
})
