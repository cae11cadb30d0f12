import { Writable } from 'node:stream'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../src/logger.js'
import { RegistrationError } from '../../../src/protocol/errors.js'
import { decodeGatewayBatch } from '../../../src/protocol/gateway.js'
import { decodeRequest } from '../../../src/protocol/messages.js'
import { Password } from '../../../src/protocol/pkcs12.js'
import { idempotencyKey } from '../../../src/registration/idempotency.js'

const SECRET = 'a-very-secret-pässword'
const decode = (body: object) => decodeRequest(Buffer.from(JSON.stringify(body)), 16_384)
const batch = (entry: object) =>
  decodeGatewayBatch(
    Buffer.from(
      JSON.stringify({ extension: 'gateway/1', requestId: 'b', devices: [{ deviceId: 's-1', ...entry }] }),
    ),
    { maxRequestBytes: 16_384, maxDevicesPerBatch: 10 },
  )

function refusal(fn: () => unknown): RegistrationError {
  try {
    fn()
  } catch (err) {
    if (err instanceof RegistrationError) return err
    throw err
  }
  throw new Error('not refused')
}

describe('the pkcs12 field', () => {
  it('is read into a Password that reveals itself only when asked', () => {
    const request = decode({ requestId: 'r', keyAlgorithm: 'Ed25519', pkcs12: { password: SECRET } })
    expect(request.pkcs12?.password.reveal()).toBe(SECRET)
    expect(request.keyAlgorithm).toBe('Ed25519')
    const entry = batch({ pkcs12: { password: SECRET } }).devices[0]
    expect(entry?.pkcs12?.password.reveal()).toBe(SECRET)
  })

  it('never shows the password: JSON, String, util.inspect, a log line', () => {
    const request = decode({ requestId: 'r', pkcs12: { password: SECRET } })
    expect(JSON.stringify(request)).not.toContain(SECRET)
    expect(String(request.pkcs12?.password)).not.toContain(SECRET)
    expect(inspect(request, { depth: 10 })).not.toContain(SECRET)
    expect(`${request.pkcs12?.password}`).toBe('[redacted]')
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const log = createLogger('info', sink)
    log.info({ request, password: SECRET, nested: { password: SECRET } }, 'a careless line')
    expect(lines.join('')).toContain('a careless line')
    expect(lines.join('')).not.toContain(SECRET)
  })

  it('is not part of the request hash: neither the password nor whether a bundle is asked for', () => {
    const key = (body: object) => idempotencyKey('d', decode(body), 'ECDSA-P256')
    const plain = key({ requestId: 'r' })
    expect(key({ requestId: 'r', pkcs12: { password: SECRET } })).toBe(plain)
    expect(key({ requestId: 'r', pkcs12: { password: `${SECRET}-2` } })).toBe(plain)
    expect(key({ requestId: 's', pkcs12: { password: SECRET } })).not.toBe(plain)
  })

  it.each([
    ['8 characters', 'x'.repeat(8)],
    ['128 characters', 'x'.repeat(128)],
    ['128 characters outside the BMP (256 UTF-16 units)', '🔑'.repeat(128)],
    ['spaces', '        '],
  ])('accepts a password of %s', (_, password) => {
    expect(decode({ pkcs12: { password } }).pkcs12?.password).toBeInstanceOf(Password)
  })

  it.each([
    ['missing', {}],
    ['empty', { password: '' }],
    ['7 characters', { password: 'x'.repeat(7) }],
    ['129 characters', { password: 'x'.repeat(129) }],
    ['a NUL', { password: 'password\u0000' }],
    ['a newline', { password: 'pass\nword' }],
    ['DEL', { password: 'password\u007f' }],
    ['a C1 control', { password: 'password\u0085' }],
    ['a lone surrogate', { password: 'password\ud800' }],
    ['a number', { password: 12345678 }],
    ['null', { password: null }],
  ])('refuses a password that is %s: MALFORMED_REQUEST, in a request and in a batch entry', (_, pkcs12) => {
    for (const err of [refusal(() => decode({ pkcs12 })), refusal(() => batch({ pkcs12 }))]) {
      expect(err.code).toBe('MALFORMED_REQUEST')
      expect(err.message).toContain('8-128 characters')
      const p = (pkcs12 as { password?: unknown }).password
      if (typeof p === 'string' && p.length > 0) expect(err.message).not.toContain(p)
    }
  })

  it.each([
    ['a string', 'secret-password', 'MALFORMED_REQUEST'],
    ['an array', ['secret-password'], 'MALFORMED_REQUEST'],
    ['null', null, 'MALFORMED_REQUEST'],
    ['a field beside the password', { password: SECRET, iterations: 1 }, 'UNKNOWN_FIELD'],
  ])('refuses pkcs12 as %s', (_, pkcs12, code) => {
    for (const err of [refusal(() => decode({ pkcs12 })), refusal(() => batch({ pkcs12 }))]) {
      expect(err.code).toBe(code)
      expect(err.message).not.toContain(SECRET)
    }
  })

  it('refuses pkcs12 with a CSR: the key stays on the device, there is nothing to bundle', () => {
    for (const err of [
      refusal(() => decode({ csr: 'MIIB', pkcs12: { password: SECRET } })),
      refusal(() => batch({ csr: 'MIIB', pkcs12: { password: SECRET } })),
    ]) {
      expect(err.code).toBe('MALFORMED_REQUEST')
      expect(err.message).toContain('csr')
      expect(err.message).not.toContain(SECRET)
    }
  })
})
