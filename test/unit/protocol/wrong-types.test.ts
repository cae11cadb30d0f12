import { describe, expect, it } from 'vitest'
import { RegistrationError } from '../../../src/protocol/errors.js'
import { decodeGatewayBatch } from '../../../src/protocol/gateway.js'
import { decodeRequest } from '../../../src/protocol/messages.js'

// The error table of docs/protocol.md: a field of the wrong type is MALFORMED_REQUEST, whatever the field, in a
// v1 request and in a gateway/1 batch alike. Every field, every JSON type it is not.

type JsonType = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object'
const SAMPLES: Record<JsonType, unknown> = {
  string: '1',
  number: 1,
  boolean: true,
  null: null,
  array: [1],
  object: { a: 1 },
}
const wrongFor = (right: JsonType): [JsonType, unknown][] =>
  (Object.keys(SAMPLES) as JsonType[]).filter((t) => t !== right).map((t) => [t, SAMPLES[t]])

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof RegistrationError ? err.code : 'not a RegistrationError'
  }
  return undefined
}

const V1_FIELDS: Record<string, JsonType> = {
  version: 'number',
  requestId: 'string',
  csr: 'string',
  keyAlgorithm: 'string',
}
const v1Cases = Object.entries(V1_FIELDS).flatMap(([field, right]) =>
  wrongFor(right).map(([type, value]) => [field, type, value] as const),
)

const BATCH_FIELDS: Record<string, JsonType> = {
  version: 'number',
  extension: 'string',
  requestId: 'string',
  devices: 'array',
}
const DEVICE_FIELDS: Record<string, JsonType> = { deviceId: 'string', csr: 'string', keyAlgorithm: 'string' }
const validBatch = () => ({
  version: 1,
  extension: 'gateway/1',
  requestId: 'b-1',
  devices: [{ deviceId: 's-1' }] as unknown[],
})
const batchCases = [
  ...Object.entries(BATCH_FIELDS).flatMap(([field, right]) =>
    wrongFor(right).map(([type, value]) => [field, type, { ...validBatch(), [field]: value }] as const),
  ),
  ...wrongFor('object').map(
    ([type, value]) => ['devices[0]', type, { ...validBatch(), devices: [value] }] as const,
  ),
  ...Object.entries(DEVICE_FIELDS).flatMap(([field, right]) =>
    wrongFor(right).map(
      ([type, value]) =>
        [
          `devices[0].${field}`,
          type,
          { ...validBatch(), devices: [{ deviceId: 's-1', [field]: value }] },
        ] as const,
    ),
  ),
]

describe('a field of the wrong type is MALFORMED_REQUEST', () => {
  it('the valid request and batch decode (the cases below differ from them in one field only)', () => {
    expect(
      codeOf(() =>
        decodeRequest(Buffer.from('{"version":1,"requestId":"r","keyAlgorithm":"Ed25519"}'), 4096),
      ),
    ).toBe(undefined)
    expect(codeOf(() => decodeGatewayBatch(Buffer.from(JSON.stringify(validBatch())), limits))).toBe(
      undefined,
    )
  })

  it.each(v1Cases)('v1 request: %s as %s', (field, _type, value) => {
    const payload = Buffer.from(JSON.stringify({ [field]: value }))
    expect(codeOf(() => decodeRequest(payload, 4096))).toBe('MALFORMED_REQUEST')
  })

  it.each(batchCases)('gateway batch: %s as %s', (_field, _type, body) => {
    expect(codeOf(() => decodeGatewayBatch(Buffer.from(JSON.stringify(body)), limits))).toBe(
      'MALFORMED_REQUEST',
    )
  })

  it('a value of the right type that is not allowed keeps its own code', () => {
    expect(codeOf(() => decodeRequest(Buffer.from('{"version":2}'), 4096))).toBe('UNSUPPORTED_VERSION')
    const batch = (over: object) => Buffer.from(JSON.stringify({ ...validBatch(), ...over }))
    expect(codeOf(() => decodeGatewayBatch(batch({ version: 2 }), limits))).toBe('UNSUPPORTED_VERSION')
    expect(codeOf(() => decodeGatewayBatch(batch({ extension: 'gateway/2' }), limits))).toBe(
      'UNSUPPORTED_VERSION',
    )
  })
})

const limits = { maxRequestBytes: 4096, maxDevicesPerBatch: 3 }
