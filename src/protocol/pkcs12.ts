import { inspect } from 'node:util'
import { RegistrationError } from './errors.js'

const malformed = (message: string): RegistrationError => new RegistrationError('MALFORMED_REQUEST', message)

/**
 * Password is a PKCS#12 password as it came in a request. It never shows: JSON (so pino's log lines, a reply, a
 * hook's payload) and util.inspect print `[redacted]`; only `reveal()` gives it, where the bundle is built. The
 * request hash never includes it (registration/idempotency.ts).
 */
export class Password {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  reveal(): string {
    return this.#value
  }
  toJSON(): string {
    return '[redacted]'
  }
  toString(): string {
    return '[redacted]'
  }
  [inspect.custom](): string {
    return 'Password [redacted]'
  }
}

/** Pkcs12Request is a request's `pkcs12` field: answer with a PKCS#12 bundle protected by this password. */
export interface Pkcs12Request {
  readonly password: Password
}

/** PASSWORD_RULE says what a password may be (docs/protocol.md, "PKCS#12 bundles"). */
export const PASSWORD_RULE =
  'must be a string of 8-128 characters, none of them a control character (U+0000-U+001F, U+007F-U+009F)'

const PASSWORD = /^[^\p{Cc}\p{Cs}]{8,128}$/u

/** isPassword says whether a value follows PASSWORD_RULE (a client checks before it sends). */
export const isPassword = (value: unknown): value is string =>
  typeof value === 'string' && PASSWORD.test(value)

/**
 * readPkcs12 validates a `pkcs12` field (`{"password": "..."}`) at `at` (e.g. `devices[2].`): MALFORMED_REQUEST
 * on any other shape, a missing, short, long or control-character password, or with `csr` (the device holds its
 * key: there is nothing to bundle); UNKNOWN_FIELD for a field beside `password`. The password is never part of a
 * message.
 */
export function readPkcs12(value: unknown, csr: unknown, at = ''): Pkcs12Request | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(`${at}pkcs12 must be an object with a password`)
  const unknown = Object.keys(value).find((key) => key !== 'password')
  if (unknown !== undefined)
    throw new RegistrationError('UNKNOWN_FIELD', `unknown field "${at}pkcs12.${unknown}"`)
  const { password } = value as { password?: unknown }
  if (!isPassword(password)) throw malformed(`${at}pkcs12.password ${PASSWORD_RULE}`)
  if (csr !== undefined)
    throw malformed(`${at}pkcs12 needs a key made by the bridge: with csr the key stays on the device`)
  return { password: new Password(password) }
}
