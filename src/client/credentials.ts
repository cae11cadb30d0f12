import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connectTls, type DownstreamCredentials, type Registration } from './register.js'

/** CREDENTIAL_FILES are the names `writeCredentials` uses. */
export const CREDENTIAL_FILES = { certificate: 'device.crt', privateKey: 'device.key', ca: 'ca.crt' } as const

/**
 * writeCredentials stores credentials as PEM files (no key file for a sensor that made its own key); the key file
 * is readable by its owner only. Every file is written whole first and then renamed into place, so that a renewal
 * over earlier files never leaves half a file.
 */
export async function writeCredentials(dir: string, credentials: DownstreamCredentials): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const files = [
    [CREDENTIAL_FILES.privateKey, credentials.privateKeyPem, 0o600],
    [CREDENTIAL_FILES.certificate, credentials.certificatePem, 0o644],
    [CREDENTIAL_FILES.ca, credentials.caCertificatesPem, 0o644],
  ].filter((file): file is [string, string, number] => file[1] !== undefined)
  for (const [name, text, mode] of files)
    await writeFile(join(dir, `${name}.tmp`), text, { mode, flush: true })
  for (const [name] of files) await rename(join(dir, `${name}.tmp`), join(dir, name))
}

/** verifyCredentials connects to a production broker with the new credentials, then disconnects. */
export async function verifyCredentials(url: string, registration: Registration): Promise<void> {
  const client = await connectTls(url, {
    certPem: registration.certificatePem,
    keyPem: registration.privateKeyPem,
    caPem: registration.caCertificatesPem,
  })
  await client.endAsync()
}
