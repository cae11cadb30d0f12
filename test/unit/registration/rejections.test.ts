import { Writable } from 'node:stream'
import { expect, it } from 'vitest'
import { createLogger } from '../../../src/logger.js'
import {
  RegistrationError,
  StateUnavailableError,
  toRegistrationError,
} from '../../../src/protocol/errors.js'
import { RejectionLog } from '../../../src/registration/rejections.js'

/** logged runs one rejection through the RejectionLog into a real pino logger and returns the line. */
function logged(error: RegistrationError): Record<string, unknown> {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  new RejectionLog().log('device-1', error, 'r-1', createLogger('info', sink))
  return JSON.parse(lines[0] ?? '{}') as Record<string, unknown>
}

it('an expected rejection is logged at info with its cause as one-line detail, no stack', () => {
  const driver = new Error('connect ECONNREFUSED 10.0.0.7:5432')
  const line = logged(new StateUnavailableError('registry', { cause: driver }))
  expect(line).toMatchObject({ level: 30, code: 'ISSUER_UNAVAILABLE', detail: driver.message })
  expect(JSON.stringify(line)).not.toMatch(/stack|\\n\s+at /)
  expect(logged(new RegistrationError('NOT_AUTHORIZED', 'no'))).not.toHaveProperty('err')
})

it('an unexpected error (INTERNAL_ERROR) is logged at error level with its stack', () => {
  const line = logged(toRegistrationError(new TypeError('x is undefined')))
  expect(line).toMatchObject({ level: 50, code: 'INTERNAL_ERROR' })
  expect((line.err as { stack?: string }).stack).toMatch(/TypeError: x is undefined\n\s+at /)
})
