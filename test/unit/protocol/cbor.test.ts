import { decode, encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { CBOR_MAX_DEPTH, scanCbor } from '../../../src/protocol/codec/cbor-scan.js'
import { codecOf } from '../../../src/protocol/codec/codecs.js'
import { RegistrationError } from '../../../src/protocol/errors.js'
import { decodeGatewayBatch, encodeGatewayReply, isGatewayPayload } from '../../../src/protocol/gateway.js'
import { decodeRequest, encodeReply, type IssuedReply } from '../../../src/protocol/messages.js'
import { Payload } from '../../../src/protocol/payload.js'
import { idempotencyKey } from '../../../src/registration/idempotency.js'

const CBOR = codecOf('cbor')
const cbor = (bytes: Uint8Array | number[]): Payload => new Payload(Buffer.from(bytes as Uint8Array), CBOR)
const hex = (text: string): Payload => cbor(Buffer.from(text.replace(/\s+/g, ''), 'hex'))
const LIMITS = { maxRequestBytes: 65_536, maxDevicesPerBatch: 100 }

/** codeOf is the wire code a decode fails with (and its message), or 'ok'. */
function codeOf(payload: Payload): string {
  return refusalOf(payload).split(':')[0] as string
}

/** refusalOf is `CODE: message` of a decode's failure, or 'ok'. */
function refusalOf(payload: Payload): string {
  try {
    decodeRequest(payload, 16_384)
    return 'ok'
  } catch (err) {
    if (!(err instanceof RegistrationError)) throw err
    return `${err.code}: ${err.message}`
  }
}

const DER = Buffer.from('3081b73060020100301f311d301b06035504030c14', 'hex') // a CSR's first bytes: the hash only
const PEM = `-----BEGIN CERTIFICATE REQUEST-----\n${DER.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`

describe('CBOR requests', () => {
  it('decode to the object the JSON decoder validates; a csr as DER bytes is its base64', () => {
    const request = decodeRequest(cbor(encode({ version: 1, requestId: 'r-1', csr: DER })), 16_384)
    expect(request).toEqual({ requestId: 'r-1', csr: DER.toString('base64') })
    expect(decodeRequest(cbor(encode({ keyAlgorithm: 'Ed25519' })), 16_384)).toEqual({
      keyAlgorithm: 'Ed25519',
    })
    // a text csr (PEM or base64 DER) is accepted as in JSON
    expect(decodeRequest(cbor(encode({ csr: PEM })), 16_384)).toEqual({ csr: PEM })
    expect(decodeRequest(cbor(encode({})), 16_384)).toEqual({})
  })

  it('are one request with the same request in JSON: a DER csr hashes as its PEM', () => {
    const fromCbor = decodeRequest(cbor(encode({ requestId: 'r', csr: DER })), 16_384)
    const fromJson = decodeRequest(Buffer.from(JSON.stringify({ requestId: 'r', csr: PEM })), 16_384)
    expect(idempotencyKey('d', fromCbor, 'ECDSA-P256')).toBe(idempotencyKey('d', fromJson, 'ECDSA-P256'))
    const serverKey = decodeRequest(cbor(encode({ requestId: 'r' })), 16_384)
    expect(idempotencyKey('d', serverKey, 'ECDSA-P256')).toBe(
      idempotencyKey('d', { requestId: 'r', keyAlgorithm: 'ECDSA-P256' }, 'ECDSA-P256'),
    )
  })

  it('check fields as JSON does: wrong types, unknown fields, versions, exclusive fields', () => {
    expect(codeOf(cbor(encode({ version: '1' })))).toBe('MALFORMED_REQUEST')
    expect(codeOf(cbor(encode({ version: 2 })))).toBe('UNSUPPORTED_VERSION')
    expect(codeOf(cbor(encode({ requestId: new Uint8Array([0x61]) })))).toBe('MALFORMED_REQUEST')
    expect(codeOf(cbor(encode({ csr: new Uint8Array(0) })))).toBe('MALFORMED_REQUEST')
    expect(codeOf(cbor(encode({ keyAlgorithm: new Uint8Array([1]) })))).toBe('MALFORMED_REQUEST')
    expect(codeOf(cbor(encode({ csr: DER, keyAlgorithm: 'Ed25519' })))).toBe('MALFORMED_REQUEST')
    expect(codeOf(cbor(encode({ keyAlgorithm: 'RSA-1024' })))).toBe('KEY_NOT_ALLOWED')
    expect(codeOf(cbor(encode({ requestid: 'r' })))).toBe('UNKNOWN_FIELD')
    // a __proto__ key is an own field, refused as unknown: it never reaches an object's prototype
    expect(codeOf(hex('a1 69 5f5f70726f746f5f5f a0'))).toBe('UNKNOWN_FIELD')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('refuse a payload over the size limit before decoding it', () => {
    const big = cbor(encode({ requestId: 'r', csr: new Uint8Array(20_000) }))
    expect(codeOf(big)).toBe('REQUEST_TOO_LARGE')
  })

  const malformed: [string, string, string][] = [
    ['empty', '', 'truncated'],
    ['truncated: a map missing its value', 'a1 63 637372', 'truncated'],
    ['truncated: a byte string cut short', 'a1 63 637372 58 40 0102', 'declares 64 bytes where 2'],
    ['truncated: a head cut short', 'a1 63 637372 59 01', 'truncated'],
    ['an indefinite-length map', 'bf ff', 'indefinite'],
    ['an indefinite-length byte string', 'a1 63 637372 5f 41 00 ff', 'indefinite'],
    ['an indefinite-length array in a field', 'a1 67 76657273696f6e 9f ff', 'indefinite'],
    ['a repeated map key', 'a2 69 726571756573744964 61 61 69 726571756573744964 61 62', 'repeat map key'],
    ['a huge declared byte string (2^64-1)', 'a1 63 637372 5b ffffffffffffffff', 'a string declares'],
    [
      'a huge declared text string (2^32-1)',
      'a1 63 637372 7a ffffffff 61',
      'a string declares 4294967295 bytes',
    ],
    [
      'a huge declared array',
      'a1 63 637372 9b 00000000ffffffff 00',
      'a container declares 4294967295 entries',
    ],
    ['a huge declared map', 'bb 7fffffffffffffff 00', 'a container declares'],
    ['a tag (self-described CBOR)', 'd9d9f7 a0', 'tags are not accepted'],
    // {"requestId": "\ufeffr"}: a decoder's TextDecoder would silently drop the mark
    ['a text string that begins with U+FEFF', 'a1 69 726571756573744964 64 efbbbf72', 'U+FEFF'],
    ['a tag on a field', 'a1 63 637372 c2 41 01', 'tags are not accepted'],
    ['a text string that is not UTF-8', 'a1 69 726571756573744964 62 c328', 'not UTF-8'],
    ['a key that is not text', 'a1 01 01', 'map keys must be text'],
    ['a non-minimal length (strict)', 'a1 78 09 726571756573744964 61 61', 'more bytes than necessary'],
    ['undefined', 'a1 67 76657273696f6e f7', 'undefined values'],
    ['NaN', 'a1 67 76657273696f6e f97e00', 'NaN'],
    ['a bignum-sized integer', 'a1 67 76657273696f6e 1b ffffffffffffffff', 'safe integer range'],
    ['a reserved head', 'a1 67 76657273696f6e 1c', 'reserved'],
    ['bytes after the request', 'a0 00', 'bytes after the request'],
    ['not a map', '80', 'must be a CBOR map'],
    ['a byte string, not a map', '41 00', 'must be a CBOR map'],
    ['a lone break', 'ff', 'not well-formed'],
  ]
  it.each(malformed)('refuse %s with MALFORMED_REQUEST', (_name, bytes, reason) => {
    const refusal = refusalOf(hex(bytes))
    expect(refusal).toMatch(/^MALFORMED_REQUEST: /)
    expect(refusal).toContain(reason)
  })

  it('refuse nesting past the limit without recursion, however deep', () => {
    const deep = (levels: number): Buffer =>
      Buffer.concat([Buffer.from([0xa1, 0x61, 0x78]), Buffer.alloc(levels, 0x81), Buffer.from([0x00])])
    expect(scanCbor(deep(CBOR_MAX_DEPTH - 1))).toBeUndefined()
    expect(scanCbor(deep(CBOR_MAX_DEPTH))).toMatch(/nesting deeper/)
    // a packet full of nesting (the scan is a loop: no stack to overflow)
    expect(codeOf(cbor(deep(16_000)))).toBe('MALFORMED_REQUEST')
    expect(scanCbor(deep(1_000_000))).toMatch(/nesting deeper/)
  })

  it('refuse a declared length past the payload before any element is read', () => {
    expect(scanCbor(Buffer.from('5bffffffffffffffff', 'hex'))).toMatch(
      /declares 18446744073709552000 bytes where 0/,
    )
    expect(scanCbor(Buffer.from('9a0001000000', 'hex'))).toMatch(/declares 65536 entries where 1 bytes/)
  })
})

describe('CBOR gateway batches', () => {
  it('decode as in JSON, with DER csr bytes per device', () => {
    const body = {
      version: 1,
      extension: 'gateway/1',
      requestId: 'b-1',
      devices: [{ deviceId: 's-1' }, { deviceId: 's-2', csr: DER }],
    }
    const payload = cbor(encode(body))
    expect(isGatewayPayload(payload)).toBe(true)
    expect(isGatewayPayload(cbor(encode({ requestId: 'r' })))).toBe(false)
    expect(decodeGatewayBatch(payload, LIMITS)).toEqual({
      requestId: 'b-1',
      devices: [{ deviceId: 's-1' }, { deviceId: 's-2', csr: DER.toString('base64') }],
    })
  })
})

const CERT_DER = [Buffer.from('308201 01 02'.replace(/\s/g, ''), 'hex'), Buffer.from('3003020105', 'hex')]
const pem = (der: Buffer, label: string): string =>
  `-----BEGIN ${label}-----\n${der.toString('base64')}\n-----END ${label}-----\n`

describe('CBOR replies', () => {
  const issued: IssuedReply = {
    status: 'issued',
    requestId: 'r-1',
    certificate: pem(CERT_DER[0] as Buffer, 'CERTIFICATE') + pem(CERT_DER[1] as Buffer, 'CERTIFICATE'),
    caCertificates: pem(CERT_DER[1] as Buffer, 'CERTIFICATE'),
    privateKey: pem(Buffer.from('300100', 'hex'), 'PRIVATE KEY'),
    serialNumber: '5ba9d7fb',
    notBefore: '2026-11-30T18:20:17.000Z',
    notAfter: '2026-12-30T18:21:17.000Z',
    endpoint: { url: 'mqtts://mqtt.example.com:8883' },
  }

  it('carry chains as arrays of DER byte strings, the key as DER, times as epoch seconds', () => {
    const reply = decode(encodeReply(issued, CBOR)) as Record<string, unknown>
    expect(reply).toEqual({
      version: 1,
      status: 'issued',
      requestId: 'r-1',
      certificate: CERT_DER.map((d) => new Uint8Array(d)),
      caCertificates: [new Uint8Array(CERT_DER[1] as Buffer)],
      privateKey: new Uint8Array(Buffer.from('300100', 'hex')),
      serialNumber: '5ba9d7fb',
      notBefore: Date.parse('2026-11-30T18:20:17Z') / 1000,
      notAfter: Date.parse('2026-12-30T18:21:17Z') / 1000,
      endpoint: { url: 'mqtts://mqtt.example.com:8883' },
    })
  })

  it('carry a PKCS#12 bundle as its DER bytes (base64 text in JSON)', () => {
    const { privateKey: _key, ...rest } = issued
    const bundle = Buffer.from('3082010302010330', 'hex')
    const reply = decode(encodeReply({ ...rest, pkcs12: bundle.toString('base64') }, CBOR))
    expect((reply as Record<string, unknown>).pkcs12).toEqual(new Uint8Array(bundle))
    expect(reply).not.toHaveProperty('privateKey')
  })

  it('carry error codes as JSON does, and gateway replies with their extension fields', () => {
    const rejected = {
      status: 'rejected',
      error: { code: 'RATE_LIMITED', message: 'too many requests', retryable: true, retryAfterSeconds: 60 },
    } as const
    expect(decode(encodeReply(rejected, CBOR))).toEqual({ version: 1, ...rejected })
    expect(decode(encodeGatewayReply('b-1', { status: 'complete', issued: 2, rejected: 0 }, CBOR))).toEqual({
      version: 1,
      extension: 'gateway/1',
      requestId: 'b-1',
      status: 'complete',
      issued: 2,
      rejected: 0,
    })
  })
})
