import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Registration } from './register.js'
import { connectTls } from './register.js'

/** CREDENTIAL_FILES are the names `writeCredentials` uses. */
export const CREDENTIAL_FILES = { certificate: 'device.crt', privateKey: 'device.key', ca: 'ca.crt' } as const

/**
 * writeCredentials stores a registration as PEM files; the key file is readable by its owner only. Every file is
 * written whole first and then renamed into place, so that a renewal over earlier files never leaves half a file.
 */
export async function writeCredentials(dir: string, registration: Registration): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const files: [string, string, number][] = [
    [CREDENTIAL_FILES.privateKey, registration.privateKeyPem, 0o600],
    [CREDENTIAL_FILES.certificate, registration.certificatePem, 0o644],
    [CREDENTIAL_FILES.ca, registration.caCertificatesPem, 0o644],
  ]
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
