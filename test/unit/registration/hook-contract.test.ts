import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../../src/config/load.js'
import { expandTemplate } from '../../../src/issuers/template.js'
import { MalformedAnswer, parseAnswer, sanitizeReason } from '../../../src/registration/hook/contract.js'

const offered = expandTemplate(
  {
    dnsNames: ['{deviceId}.a.example', '{deviceId}.b.example'],
    uris: ['urn:d:{deviceId}'],
    validityHours: 48,
  },
  'dev-1',
)
const answer = (body: unknown): ReturnType<typeof parseAnswer> => parseAnswer(JSON.stringify(body), offered)

describe('the hook contract (docs/hook.md)', () => {
  it('an allow may keep a subset of the offered names and a shorter validity, and assign an endpoint', () => {
    expect(
      answer({
        version: 1,
        allow: true,
        certificate: { dnsNames: ['dev-1.b.example'], uris: [], validityHours: 12 },
        endpoint: { url: 'mqtts://eu.example:8883' },
      }),
    ).toEqual({
      allow: true,
      narrowing: { dnsNames: ['dev-1.b.example'], uris: [], validityHours: 12 },
      endpoint: 'mqtts://eu.example:8883',
    })
    expect(answer({ allow: true })).toEqual({ allow: true })
  })

  it.each([
    ['a name not offered', { allow: true, certificate: { dnsNames: ['dev-2.a.example'] } }],
    ['a URI not offered', { allow: true, certificate: { uris: ['urn:d:dev-2'] } }],
    ['a longer validity', { allow: true, certificate: { validityHours: 49 } }],
    ['a zero validity', { allow: true, certificate: { validityHours: 0 } }],
    ['an unknown field', { allow: true, extra: 1 }],
    ['an unknown certificate field', { allow: true, certificate: { isCA: true } }],
    ['another version', { version: 2, allow: true }],
    ['a reason on an allow', { allow: true, reason: 'x' }],
    ['an endpoint that is not a URL', { allow: true, endpoint: { url: 'eu.example:8883' } }],
    ['an endpoint with a space', { allow: true, endpoint: { url: 'mqtts://eu example' } }],
    ['an endpoint that is a file', { allow: true, endpoint: { url: 'file:///etc/passwd' } }],
    ['an endpoint with a password', { allow: true, endpoint: { url: 'mqtts://user:pass@eu.example:8883' } }],
    ['an endpoint with a user', { allow: true, endpoint: { url: 'mqtts://user@eu.example:8883' } }],
    ['an endpoint of another scheme', { allow: true, endpoint: { url: 'javascript:alert(1)' } }],
    ['an endpoint without a host', { allow: true, endpoint: { url: 'mqtts:///path' } }],
    ['no allow', { reason: 'x' }],
    ['an array', [true]],
  ])('refuses %s as malformed', (_what, body) => {
    expect(() => answer(body)).toThrow(MalformedAnswer)
  })

  it.each([
    ['a reason longer than any limit', { allow: false, reason: 'r'.repeat(60_000) }, 'r'.repeat(200)],
    ['a reason that is not text', { allow: false, reason: 7 }, 'denied by the registration hook'],
    ['an unknown field', { allow: false, reason: 'no', endpoint: { url: 'x' } }, 'no'],
    ['another version', { version: 2, allow: false, reason: 'no' }, 'no'],
  ])('a deny is a deny whatever else is wrong with it: %s', (_what, body, reason) => {
    // never "malformed", which hook.failOpen would turn into an issuance
    expect(answer(body)).toEqual({ allow: false, reason })
  })

  it('an assigned endpoint may be any MQTT broker URL: mqtts, mqtt, ssl, tls, wss, ws', () => {
    for (const url of [
      'mqtts://a.example:8883',
      'mqtt://a.example',
      'ssl://a:1',
      'tls://a:1',
      'wss://a/mqtt',
      'ws://a',
    ])
      expect(answer({ allow: true, endpoint: { url } })).toEqual({ allow: true, endpoint: url })
  })

  it('refuses what is not JSON', () => {
    expect(() => parseAnswer('{"allow": true', offered)).toThrow('the answer is not JSON')
  })

  it('a deny reason is made printable, collapsed and bounded; an empty one gets a default', () => {
    expect(sanitizeReason('a\u0000b\r\nc\u202ed\u2028e   f')).toBe('a b c d e f')
    expect([...sanitizeReason('é'.repeat(500))]).toHaveLength(200)
    expect(sanitizeReason(' \u0007 ')).toBe('denied by the registration hook')
    expect(answer({ allow: false })).toEqual({ allow: false, reason: 'denied by the registration hook' })
  })

  it('narrowing keeps only offered names, whatever it is given (the issuers apply it through expandTemplate)', () => {
    const template = { dnsNames: ['{deviceId}.a.example'], uris: [], validityHours: 48 }
    expect(
      expandTemplate(template, 'dev-1', undefined, { dnsNames: ['evil.example'], validityHours: 99 }),
    ).toEqual({ commonName: 'dev-1', dnsNames: [], uris: [], validityHours: 48 })
  })
})

describe('hook settings are checked at start', () => {
  const problems = (sets: string[]): string => {
    try {
      loadConfig({ sets })
      return ''
    } catch (err) {
      return String(err)
    }
  }

  it('https anywhere, http on loopback only', () => {
    expect(problems(['hook.url=https://hook.example.com/registrations'])).toBe('')
    expect(problems(['hook.url=http://127.0.0.1:9000/hook'])).toBe('')
    expect(problems(['hook.url=http://[::1]:9000/hook'])).toBe('')
    expect(problems(['hook.url=http://hook.example.com/registrations'])).toContain('hook.url')
    expect(problems(['hook.url=ftp://hook.example.com/'])).toContain('hook.url')
    expect(problems(['hook.url=https://bridge:s3cret@hook.example.com/'])).toContain(
      'without user or password',
    )
  })

  it('a client certificate goes with its key', () => {
    expect(problems(['hook.url=https://h.example/', 'hook.clientCertFile=/x.crt'])).toContain(
      'hook.clientCertFile and hook.clientKeyFile go together',
    )
  })
})
