import { describe, expect, it } from 'vitest'
import { RegistrationError } from '../../../src/protocol/errors.js'
import { decodeRequest, encodeReply, peekRequestId, rejectedReply } from '../../../src/protocol/messages.js'

const decode = (text: string, max = 1024) => decodeRequest(Buffer.from(text), max)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof RegistrationError ? err.code : 'not a RegistrationError'
  }
  return undefined
}

describe('decodeRequest', () => {
  it('accepts {} and the documented fields', () => {
    expect(decode('{}')).toEqual({})
    expect(decode('{"version":1,"requestId":"r-1","keyAlgorithm":"Ed25519"}')).toEqual({
      requestId: 'r-1',
      keyAlgorithm: 'Ed25519',
    })
    expect(decode('{"csr":"abc"}')).toEqual({ csr: 'abc' })
  })

  it.each([
    ['{', 'MALFORMED_REQUEST'],
    ['"x"', 'MALFORMED_REQUEST'],
    ['1', 'MALFORMED_REQUEST'],
    ['{"requestId":""}', 'MALFORMED_REQUEST'],
    ['{"requestId":"has space"}', 'MALFORMED_REQUEST'],
    [`{"requestId":"${'x'.repeat(129)}"}`, 'MALFORMED_REQUEST'],
    ['{"csr":""}', 'MALFORMED_REQUEST'],
    ['{"csr":"a","keyAlgorithm":"Ed25519"}', 'MALFORMED_REQUEST'],
    ['{"keyAlgorithm":"RSA-1024"}', 'KEY_NOT_ALLOWED'],
    ['{"version":"1"}', 'MALFORMED_REQUEST'],
    ['{"version":2}', 'UNSUPPORTED_VERSION'],
    ['{"keyAlgorithm":5}', 'MALFORMED_REQUEST'],
    ['{"keyAlgorithm":["Ed25519"]}', 'MALFORMED_REQUEST'],
    ['{"requestId":7}', 'MALFORMED_REQUEST'],
    ['{"csr":{}}', 'MALFORMED_REQUEST'],
    ['{"extra":true}', 'UNKNOWN_FIELD'],
    ['{"__proto__":{}}', 'UNKNOWN_FIELD'],
  ])('%s → %s', (text, code) => {
    expect(codeOf(() => decode(text))).toBe(code)
  })

  it('an unknown field is named in the refusal as printable ASCII, at most 64 characters', () => {
    const messageOf = (text: string): string => {
      try {
        decode(text)
        return ''
      } catch (err) {
        return (err as Error).message
      }
    }
    expect(messageOf('{"a\\u001b[31mb\\u202ec":1}')).toBe('unknown field "a?[31mb?c"')
    expect(messageOf(`{"${'k'.repeat(500)}":1}`)).toBe(`unknown field "${'k'.repeat(64)}…"`)
  })

  it('takes the last of duplicate keys, as JSON.parse does (documented)', () => {
    expect(decode('{"requestId":"first","requestId":"last"}')).toEqual({ requestId: 'last' })
    expect(codeOf(() => decode('{"keyAlgorithm":"Ed25519","keyAlgorithm":"RSA-1024"}'))).toBe(
      'KEY_NOT_ALLOWED',
    )
  })

  it('checks the size before parsing', () => {
    expect(codeOf(() => decode('{}', 1))).toBe('REQUEST_TOO_LARGE')
  })
})

describe('replies', () => {
  it('encodes the version first and echoes the requestId', () => {
    const err = new RegistrationError('RATE_LIMITED', 'slow down', { retryAfterSeconds: 5 })
    expect(JSON.parse(encodeReply(rejectedReply(err, 'r')).toString())).toEqual({
      version: 1,
      status: 'rejected',
      requestId: 'r',
      error: { code: 'RATE_LIMITED', message: 'slow down', retryable: true, retryAfterSeconds: 5 },
    })
  })

  it('peekRequestId recovers a valid requestId from a rejected request only', () => {
    expect(peekRequestId(Buffer.from('{"requestId":"ok","bad":1}'))).toBe('ok')
    expect(peekRequestId(Buffer.from('{"requestId":7}'))).toBeUndefined()
    expect(peekRequestId(Buffer.from('nope'))).toBeUndefined()
  })
})
