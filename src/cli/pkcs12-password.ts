import { readFile } from 'node:fs/promises'
import { isPassword, PASSWORD_RULE } from '../protocol/pkcs12.js'
import { UsageError } from './usage-error.js'

/** PKCS12_PASSWORD_ENV is the environment variable `register --pkcs12` reads the bundle's password from. */
export const PKCS12_PASSWORD_ENV = 'MRB_PKCS12_PASSWORD'

/**
 * pkcs12Password is the password of `register --pkcs12`: the first line of `--pkcs12-password-file` (as openssl's
 * `-passin file:` reads it), else $MRB_PKCS12_PASSWORD — never a flag's value, which `ps` shows to everyone. It
 * follows the protocol's rule (checked here, before anything is sent); no message ever shows it.
 */
export async function pkcs12Password(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const fromEnv = env[PKCS12_PASSWORD_ENV]
  if (file !== undefined && fromEnv !== undefined)
    throw new UsageError(
      `--pkcs12: give the password by --pkcs12-password-file or ${PKCS12_PASSWORD_ENV}, not both`,
    )
  if (file === undefined && fromEnv === undefined)
    throw new UsageError(`--pkcs12 needs a password: --pkcs12-password-file FILE or ${PKCS12_PASSWORD_ENV}`)
  const password =
    file === undefined
      ? (fromEnv as string)
      : ((
          await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
            throw new UsageError(`--pkcs12-password-file ${file}: ${err.code ?? err.message}`)
          })
        ).split(/\r?\n/)[0] ?? '')
  if (!isPassword(password)) throw new UsageError(`--pkcs12: the password ${PASSWORD_RULE}`)
  return password
}
