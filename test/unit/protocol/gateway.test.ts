import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { RegistrationError } from '../../../src/protocol/errors.js'
import {
  decodeGatewayBatch,
  encodeGatewayReply,
  isGatewayPayload,
  openGatewayBatch,
} from '../../../src/protocol/gateway.js'
import { peekRequestId } from '../../../src/protocol/messages.js'
import { Payload } from '../../../src/protocol/payload.js'
import { GATEWAY_REASONS } from '../../../src/registration/gateway-gate.js'

const limits = { maxRequestBytes: 4096, maxDevicesPerBatch: 3 }
const batch = (body: object): Buffer =>
  Buffer.from(JSON.stringify({ extension: 'gateway/1', requestId: 'b-1', ...body }))

function codeOf(payload: Buffer): string | undefined {
  try {
    decodeGatewayBatch(payload, limits)
    return undefined
  } catch (err) {
    return (err as RegistrationError).code
  }
}

describe('gateway/1 batch requests', () => {
  it('tells extension payloads from v1 requests by a top-level "extension" field', () => {
    expect(isGatewayPayload(batch({ devices: [] }))).toBe(true)
    expect(isGatewayPayload(Buffer.from('{"requestId":"r-1"}'))).toBe(false)
    expect(isGatewayPayload(Buffer.from('{"requestId":"a","csr":{"extension":1}}'))).toBe(false)
    expect(isGatewayPayload(Buffer.from('{"extension" broken'))).toBe(false)
  })

  it('is parsed once: the routing and the batch decoder read the same parse of one payload', () => {
    const payload = new Payload(batch({ devices: [] }))
    expect(isGatewayPayload(payload)).toBe(true)
    expect(openGatewayBatch(payload, limits)).toBe(payload.peek())
    expect(peekRequestId(payload)).toBe('b-1')
    const v1 = new Payload(Buffer.from('{"requestId":"r-1","extension":'))
    expect(isGatewayPayload(v1)).toBe(false)
    expect(() => v1.object()).toThrow('request is not UTF-8 JSON')
  })

  it('decodes devices with a CSR, a key algorithm, or neither', () => {
    const decoded = decodeGatewayBatch(
      batch({
        version: 1,
        devices: [
          { deviceId: 's-1', csr: 'MIIB' },
          { deviceId: 's-2', keyAlgorithm: 'Ed25519' },
          { deviceId: 's-3' },
        ],
      }),
      limits,
    )
    expect(decoded).toEqual({
      requestId: 'b-1',
      devices: [
        { deviceId: 's-1', csr: 'MIIB' },
        { deviceId: 's-2', keyAlgorithm: 'Ed25519' },
        { deviceId: 's-3' },
      ],
    })
  })

  it.each([
    ['no requestId', { requestId: undefined, devices: [{ deviceId: 's' }] }, 'MALFORMED_REQUEST'],
    ['no devices', { devices: [] }, 'MALFORMED_REQUEST'],
    ['too many devices', { devices: [1, 2, 3, 4].map((i) => ({ deviceId: `s-${i}` })) }, 'REQUEST_TOO_LARGE'],
    ['a device twice', { devices: [{ deviceId: 's' }, { deviceId: 's' }] }, 'MALFORMED_REQUEST'],
    ['an unsafe deviceId', { devices: [{ deviceId: 'a/b' }] }, 'MALFORMED_REQUEST'],
    ['a wildcard deviceId', { devices: [{ deviceId: '#' }] }, 'MALFORMED_REQUEST'],
    [
      'csr and keyAlgorithm',
      { devices: [{ deviceId: 's', csr: 'x', keyAlgorithm: 'Ed25519' }] },
      'MALFORMED_REQUEST',
    ],
    [
      'a keyAlgorithm that is not a string',
      { devices: [{ deviceId: 's', keyAlgorithm: 7 }] },
      'MALFORMED_REQUEST',
    ],
    ['an unknown device field', { devices: [{ deviceId: 's', colour: 1 }] }, 'UNKNOWN_FIELD'],
    ['an unknown batch field', { devices: [{ deviceId: 's' }], colour: 1 }, 'UNKNOWN_FIELD'],
    ['another extension', { extension: 'gateway/2', devices: [{ deviceId: 's' }] }, 'UNSUPPORTED_VERSION'],
    ['another version', { version: 2, devices: [{ deviceId: 's' }] }, 'UNSUPPORTED_VERSION'],
  ])('refuses the whole batch for %s', (_name, body, code) => {
    expect(codeOf(batch(body))).toBe(code)
  })

  it('judges an unknown keyAlgorithm per device: that device is refused KEY_NOT_ALLOWED, the batch decodes', () => {
    const decoded = decodeGatewayBatch(
      batch({
        devices: [
          { deviceId: 's-1', keyAlgorithm: 'DSA' },
          { deviceId: 's-2', keyAlgorithm: 'Ed25519' },
        ],
      }),
      limits,
    )
    expect(decoded.devices[0]?.refused?.code).toBe('KEY_NOT_ALLOWED')
    expect(decoded.devices[1]).toEqual({ deviceId: 's-2', keyAlgorithm: 'Ed25519' })
  })

  it('checks the extension and version before any other field', () => {
    expect(codeOf(batch({ extension: 'gateway/2', colour: 1 }))).toBe('UNSUPPORTED_VERSION')
    expect(() => openGatewayBatch(batch({ extension: 'gateway/2' }), limits)).toThrow(/extension must be/)
  })

  it('takes the last of duplicate keys, as JSON.parse does (documented)', () => {
    const payload = Buffer.from(
      '{"extension":"gateway/1","requestId":"first","requestId":"last","devices":[{"deviceId":"a","deviceId":"b"}]}',
    )
    expect(decodeGatewayBatch(payload, limits)).toEqual({ requestId: 'last', devices: [{ deviceId: 'b' }] })
  })

  it('refuses a batch over the byte limit, and one that is not UTF-8 JSON', () => {
    expect(codeOf(batch({ devices: [{ deviceId: 's', csr: 'x'.repeat(5000) }] }))).toBe('REQUEST_TOO_LARGE')
    expect(codeOf(Buffer.from([0x7b, 0xff, 0x7d]))).toBe('MALFORMED_REQUEST')
  })

  it('encodes replies with version, extension and requestId first', () => {
    const text = encodeGatewayReply('b-1', { status: 'complete', issued: 2, rejected: 1 }).toString()
    expect(text).toBe(
      '{"version":1,"extension":"gateway/1","requestId":"b-1","status":"complete","issued":2,"rejected":1}',
    )
  })

  it('documents exactly the reasons the bridge sends, in docs/protocol.md', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')
    const section = doc.split('### Per-device rules')[1]?.split('\n### ')[0] ?? ''
    const reasons = [...section.matchAll(/^\| `NOT_AUTHORIZED` \| `([A-Z_]+)` \|/gm)].map((m) => m[1])
    expect(reasons).toEqual([...GATEWAY_REASONS])
  })
})
