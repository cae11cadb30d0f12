import { X509Certificate } from 'node:crypto'
import { decode, encode } from 'cborg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AwsClient, connectAwsClient, writeTemplates } from '../support/aws-fleet.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { grantedQos } from '../support/device.js'
import { run } from '../support/tools.js'

// The AWS topics on the wire, with MQTT.js: who gets an answer (the asking connection, subscribed), bad input in
// JSON and CBOR, CBOR as the embedded-C clients speak it (cborg, and python's cbor2 as an independent implementation),
// rate limits, and the set refused when aws.enabled is off (the default).

const CREATE = '$aws/certificates/create/json'
const CREATE_CBOR = '$aws/certificates/create/cbor'
const CSR_JSON = '$aws/certificates/create-from-csr/json'
const CSR_CBOR = '$aws/certificates/create-from-csr/cbor'
const PROVISION_CBOR = '$aws/provisioning-templates/FleetTemplate/provision/cbor'

let bridge: TestBridge
beforeAll(async () => {
  bridge = await startTestBridge(['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`])
})
afterAll(() => bridge.stop())

const json = (m: { payload: Buffer }): Record<string, unknown> => JSON.parse(m.payload.toString('utf8'))
const cbor = (m: { payload: Buffer }): Record<string, unknown> => decode(m.payload) as Record<string, unknown>

/** cbor2 runs python's cbor2 (Debian's python3-cbor2): `encode` a JSON value to CBOR hex, or `decode` hex to JSON. */
async function cbor2(mode: 'encode' | 'decode', input: string): Promise<string> {
  const script =
    mode === 'encode'
      ? 'import cbor2,json,sys; sys.stdout.write(cbor2.dumps(json.loads(sys.argv[1])).hex())'
      : 'import cbor2,json,sys; v=cbor2.loads(bytes.fromhex(sys.argv[1])); print(json.dumps({k:[type(x).__name__,x] for k,x in v.items()}))'
  const result = await run('/usr/bin/python3', ['-c', script, input])
  if (result.code !== 0) throw new Error(result.stderr)
  return result.stdout
}

async function withClient<T>(id: string, fn: (c: AwsClient) => Promise<T>): Promise<T> {
  const c = await connectAwsClient(bridge, id)
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

describe('AWS topics: the answer reaches the asking connection only', () => {
  it('two devices subscribed to the same /accepted topic each get their own answer, never the other one', async () => {
    const a = await connectAwsClient(bridge, 'device-001')
    const b = await connectAwsClient(bridge, 'device-002')
    try {
      expect(await a.subscribe(CREATE)).toEqual([1, 1])
      expect(await b.subscribe(CREATE)).toEqual([1, 1])
      const first = json(await a.request(CREATE, '{}'))
      const second = json(await b.request(CREATE, ''))
      expect(new X509Certificate(first.certificatePem as string).subject).toContain('CN=device-001')
      expect(new X509Certificate(second.certificatePem as string).subject).toContain('CN=device-002')
      // each connection received one message: its own answer (a key!)
      expect(a.messages.map(json)).toEqual([first])
      expect(b.messages.map(json)).toEqual([second])
    } finally {
      await Promise.all([a.end(), b.end()])
    }
  })

  it('a device not subscribed gets nothing (subscribe before publish); subscribed, it gets its answer', async () => {
    await withClient('device-003', async (c) => {
      const dropped = bridge.waitForLog('answer not sent: not subscribed, or gone')
      await c.client.publishAsync(CREATE, '{}', { qos: 1 })
      await dropped
      expect(c.messages).toEqual([])
      await c.subscribe(CREATE)
      const answer = await c.request(CREATE, '{}')
      expect(answer.topic).toBe(`${CREATE}/accepted`)
      expect(c.messages).toHaveLength(1)
    })
  })

  it('only the exact reply topics may be subscribed; a wildcard under $aws, or another topic there, is refused', async () => {
    await withClient('device-004', async (c) => {
      expect(await grantedQos(c.client, `${CREATE}/accepted`, 1)).toBe(1)
      expect(await grantedQos(c.client, '$aws/certificates/create/+/accepted', 1)).toBe(128)
      expect(await grantedQos(c.client, '$aws/#', 1)).toBe(128)
      expect(await grantedQos(c.client, CREATE, 1)).toBe(128)
      expect(await grantedQos(c.client, '$aws/provisioning-templates/+/provision/json/accepted', 1)).toBe(128)
    })
  })
})

describe('AWS topics: bad input is answered on /rejected in AWS shape, in the request format', () => {
  it('JSON: unreadable, not an object, wrong types, unknown template', async () => {
    await withClient('device-005', async (c) => {
      await c.subscribe(CSR_JSON)
      for (const payload of ['{not json', '[1]', '{"certificateSigningRequest":7}']) {
        const m = await c.request(CSR_JSON, payload)
        expect(m.topic).toBe(`${CSR_JSON}/rejected`)
        expect(json(m)).toMatchObject({ statusCode: 400, errorCode: 'InvalidPayload' })
      }
      const long = `$aws/provisioning-templates/${'x'.repeat(37)}/provision/json`
      await c.subscribe(long)
      expect(json(await c.request(long, '{"certificateOwnershipToken":"t"}'))).toMatchObject({
        statusCode: 404,
        errorCode: 'TemplateNotFound',
      })
    })
  })

  it('CBOR: unreadable, and a CSR as a number; the rejection is a CBOR map with an integer statusCode', async () => {
    const files = await bridge.pki.makeDevice('device-cbor-bad')
    const c = await connectAwsClient(bridge, 'device-cbor-bad', files)
    await (async () => {
      await c.subscribe(CSR_CBOR)
      for (const payload of [
        Buffer.from('{"json":1}'),
        Buffer.from(encode({ certificateSigningRequest: 7 })),
      ]) {
        const m = await c.request(CSR_CBOR, payload)
        expect(m.topic).toBe(`${CSR_CBOR}/rejected`)
        expect(cbor(m)).toMatchObject({ statusCode: 400, errorCode: 'InvalidPayload' })
        expect(JSON.parse(await cbor2('decode', m.payload.toString('hex'))).statusCode).toEqual(['int', 400])
      }
    })().finally(() => c.end())
  })

  it("RegisterThing spends the identity's rate limit too: past it, 429 Throttling", async () => {
    const files = await bridge.pki.makeDevice('device-register-throttled')
    const c = await connectAwsClient(bridge, 'device-register-throttled', files)
    const provision = '$aws/provisioning-templates/FleetTemplate/provision/json'
    try {
      await c.subscribe(provision)
      const answers: Record<string, unknown>[] = []
      const body = JSON.stringify({
        certificateOwnershipToken: 'not-a-token',
        parameters: { SerialNumber: 'SN-9' },
      })
      for (let i = 0; i < 6; i++) answers.push(json(await c.request(provision, body)))
      expect(answers.slice(0, 5).every((a) => a.errorCode === 'InvalidCertificateOwnershipToken')).toBe(true)
      expect(answers[5]).toMatchObject({ statusCode: 429, errorCode: 'Throttling' })
    } finally {
      await c.end()
    }
  })

  it('too many requests: 429 Throttling (bad ones spend the rate limit like good ones)', async () => {
    const files = await bridge.pki.makeDevice('device-throttled')
    const c = await connectAwsClient(bridge, 'device-throttled', files)
    try {
      await c.subscribe(CSR_JSON)
      const answers: Record<string, unknown>[] = []
      for (let i = 0; i < 6; i++) answers.push(json(await c.request(CSR_JSON, '{')))
      expect(answers.slice(0, 5).every((a) => a.errorCode === 'InvalidPayload')).toBe(true)
      expect(answers[5]).toMatchObject({ statusCode: 429, errorCode: 'Throttling' })
    } finally {
      await c.end()
    }
  })
})

describe('AWS topics in CBOR (cborg, and python cbor2)', () => {
  it('CreateKeysAndCertificate with an empty body, then RegisterThing: text strings, as tinycbor clients need', async () => {
    const files = await bridge.pki.makeDevice('device-006')
    const c = await connectAwsClient(bridge, 'device-006', files)
    try {
      await c.subscribe(CREATE_CBOR)
      const created = await c.request(CREATE_CBOR, Buffer.alloc(0))
      expect(created.topic).toBe(`${CREATE_CBOR}/accepted`)
      const types = JSON.parse(await cbor2('decode', created.payload.toString('hex')))
      for (const field of ['certificateId', 'certificatePem', 'privateKey', 'certificateOwnershipToken'])
        expect(types[field][0]).toBe('str')
      const token = types.certificateOwnershipToken[1] as string
      await c.subscribe(PROVISION_CBOR)
      const body = await cbor2(
        'encode',
        JSON.stringify({ certificateOwnershipToken: token, parameters: { SerialNumber: 'SN-6' } }),
      )
      const registered = await c.request(PROVISION_CBOR, Buffer.from(body, 'hex'))
      expect(registered.topic).toBe(`${PROVISION_CBOR}/accepted`)
      expect(cbor(registered)).toEqual({
        thingName: 'device-006',
        deviceConfiguration: { site: 'factory-1', serial: 'SN-6' },
      })
    } finally {
      await c.end()
    }
  })

  it('CreateCertificateFromCsr in CBOR (a PEM text string, as embedded-C sends it)', async () => {
    const { csr } = await opensslCsr('/CN=device-007')
    const files = await bridge.pki.makeDevice('device-007')
    const c = await connectAwsClient(bridge, 'device-007', files)
    try {
      await c.subscribe(CSR_CBOR)
      const answer = await c.request(CSR_CBOR, Buffer.from(encode({ certificateSigningRequest: csr })))
      expect(answer.topic).toBe(`${CSR_CBOR}/accepted`)
      const body = cbor(answer)
      expect(typeof body.certificatePem).toBe('string')
      expect(body).not.toHaveProperty('privateKey')
      expect(new X509Certificate(body.certificatePem as string).subject).toContain('CN=device-007')
    } finally {
      await c.end()
    }
  })
})

describe('aws.enabled off (the default): everything under $aws stays refused', () => {
  it('subscriptions are refused and a publish ends the connection', async () => {
    const off = await startTestBridge([])
    try {
      const c = await connectAwsClient(off, 'device-001')
      expect(await grantedQos(c.client, `${CREATE}/accepted`, 1)).toBe(128)
      const closed = new Promise<void>((resolve) => c.client.stream.once('close', () => resolve()))
      c.client.publish(CREATE, '{}', { qos: 1 })
      await closed
      expect(c.messages).toEqual([])
      await c.end()
    } finally {
      await off.stop()
    }
  })
})
