import { Writable } from 'node:stream'
import { expect, it } from 'vitest'
import { createLogger } from '../../src/logger.js'

it('redacts private keys wherever they appear in a log call', () => {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  const logger = createLogger('info', sink)
  const secret =
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n'
  logger.info(
    { privateKey: secret, reply: { privateKey: secret }, credentials: { privateKeyPem: secret } },
    'x',
  )
  expect(lines.join('')).not.toContain('PRIVATE KEY')
  expect(lines.join('')).toContain('[redacted]')
})
