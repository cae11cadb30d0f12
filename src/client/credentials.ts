import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type BundledRegistration,
  connectTls,
  type DownstreamCredentials,
  type Registration,
} from './register.js'

/** CREDENTIAL_FILES are the names `writeCredentials` uses. */
export const CREDENTIAL_FILES = {
  certificate: 'device.crt',
  privateKey: 'device.key',
  pkcs12: 'device.p12',
  ca: 'ca.crt',
} as const

/**
 * writeCredentials stores credentials as PEM files, and a PKCS#12 bundle as DER (no key file for a sensor that
 * made its own key or got a bundle); the key and bundle files are readable by their owner only. Every file is
 * written whole first and then renamed into place, so that a renewal over earlier files never leaves half a file.
 * It returns the names of the files written.
 */
export async function writeCredentials(dir: string, credentials: DownstreamCredentials): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const all: [string, string | Buffer | undefined, number][] = [
    [CREDENTIAL_FILES.certificate, credentials.certificatePem, 0o644],
    [CREDENTIAL_FILES.privateKey, credentials.privateKeyPem, 0o600],
    [CREDENTIAL_FILES.pkcs12, credentials.pkcs12, 0o600],
    [CREDENTIAL_FILES.ca, credentials.caCertificatesPem, 0o644],
  ]
  const files = all.filter((file): file is [string, string | Buffer, number] => file[1] !== undefined)
  for (const [name, data, mode] of files)
    await writeFile(join(dir, `${name}.tmp`), data, { mode, flush: true })
  for (const [name] of files) await rename(join(dir, `${name}.tmp`), join(dir, name))
  return files.map(([name]) => name)
}

/**
 * verifyCredentials connects to a production broker with the new credentials, then disconnects; a bundle is
 * opened with its password (by node's TLS, so OpenSSL reads it once more).
 */
export async function verifyCredentials(
  url: string,
  registration: Registration | BundledRegistration,
  pkcs12Password?: string,
): Promise<void> {
  const caPem = registration.caCertificatesPem
  const client = await connectTls(
    url,
    'pkcs12' in registration
      ? { pkcs12: registration.pkcs12, password: pkcs12Password ?? '', caPem }
      : { certPem: registration.certificatePem, keyPem: registration.privateKeyPem, caPem },
  )
  await client.endAsync()
}
