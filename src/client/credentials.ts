import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Registration } from './register.js'
import { connectTls } from './register.js'

/** CREDENTIAL_FILES are the names `writeCredentials` uses. */
export const CREDENTIAL_FILES = { certificate: 'device.crt', privateKey: 'device.key', ca: 'ca.crt' } as const

/** writeCredentials stores a registration as PEM files; the key file is readable by its owner only. */
export async function writeCredentials(dir: string, registration: Registration): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFile(join(dir, CREDENTIAL_FILES.certificate), registration.certificatePem)
  await writeFile(join(dir, CREDENTIAL_FILES.ca), registration.caCertificatesPem)
  await writeFile(join(dir, CREDENTIAL_FILES.privateKey), registration.privateKeyPem, { mode: 0o600 })
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
