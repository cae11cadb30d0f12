import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { buildCertificate, type CertificateProfile, type Signer } from '../../src/pki/certificate.js'
import { generateKey, type KeyPair, spkiDer } from '../../src/pki/keys.js'
import { toPem } from '../../src/pki/pem.js'
import { loadCa, selfSigner } from '../../src/pki/signer.js'

/** PemPair is a certificate and its key, as PEM. */
export interface PemPair {
  readonly certPem: string
  readonly keyPem: string
  readonly signer: Signer
}

const HOUR = 3600_000
const keyPem = (keys: KeyPair): string => keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()

/** makeCa makes a self-signed CA, valid from `notBefore` to `notAfter` (default: an hour ago to a year on). */
export async function makeCa(
  commonName: string,
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<PemPair> {
  const keys = await generateKey('ECDSA-P256')
  const profile: CertificateProfile = {
    commonName,
    isCa: true,
    pathLength: 0,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    notBefore: validity.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: validity.notAfter ?? new Date(Date.now() + 365 * 24 * HOUR),
  }
  const signer = selfSigner(profile, keys)
  return {
    certPem: toPem(buildCertificate(profile, spkiDer(keys.publicKey), signer).der, 'CERTIFICATE'),
    keyPem: keyPem(keys),
    signer,
  }
}

/**
 * makeServerCertificate makes a localhost server certificate signed by `issuer` (or a device's, with clientAuth),
 * valid from `notBefore` to `notAfter` (default: an hour ago to a day on).
 */
export async function makeServerCertificate(
  issuer: Signer,
  commonName = 'localhost',
  usage: 'serverAuth' | 'clientAuth' = 'serverAuth',
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<PemPair> {
  const keys = await generateKey('ECDSA-P256')
  const profile: CertificateProfile = {
    commonName,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    keyUsage: ['digitalSignature'],
    extKeyUsage: [usage],
    notBefore: validity.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: validity.notAfter ?? new Date(Date.now() + 24 * HOUR),
  }
  const der = buildCertificate(profile, spkiDer(keys.publicKey), issuer).der
  return { certPem: toPem(der, 'CERTIFICATE'), keyPem: keyPem(keys), signer: selfSigner(profile, keys) }
}

/** signerOf loads a CA's signer from its certificate and key files. */
export async function signerOf(certFile: string, keyFile: string): Promise<Signer> {
  return loadCa(await readFile(certFile, 'utf8'), await readFile(keyFile, 'utf8')).signer
}

/** replaceFile replaces a file in one step (write beside it, then rename), as tools that rotate files do. */
export async function replaceFile(path: string, content: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`)
  await writeFile(temporary, content)
  await rename(temporary, path)
}

/**
 * SecretMount lays files out as the kubelet mounts a Secret: `dir/name` -> `..data/name`, `..data` -> a
 * timestamped directory; `update` writes a new directory and swaps the `..data` symlink atomically. A `null`
 * content puts a directory where the file was (a file no reader can read, even as root).
 */
export interface SecretMount {
  readonly dir: string
  file(name: string): string
  update(files: Record<string, string | null>): Promise<void>
}

/** createSecretMount makes a Secret-style mount in `dir` holding `files`. */
export async function createSecretMount(dir: string, files: Record<string, string>): Promise<SecretMount> {
  let generation = 0
  const update = async (contents: Record<string, string | null>): Promise<void> => {
    const version = `..${Date.now()}_${generation++}`
    await mkdir(join(dir, version), { recursive: true })
    for (const [name, content] of Object.entries(contents)) {
      if (content === null) await mkdir(join(dir, version, name))
      else await writeFile(join(dir, version, name), content)
    }
    await symlink(version, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  }
  await mkdir(dir, { recursive: true })
  await update(files)
  for (const name of Object.keys(files)) await symlink(join('..data', name), join(dir, name))
  return { dir, file: (name) => join(dir, name), update }
}
