import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildCertificate, type CertificateProfile, type Signer } from './certificate.js'
import { generateKey, spkiDer } from './keys.js'
import { toPem } from './pem.js'
import { selfSigner } from './signer.js'

/** DEV_PKI_FILES names every file `init` writes, relative to the PKI directory. */
export const DEV_PKI_FILES = {
  factoryCaCert: 'factory-ca.crt',
  factoryCaKey: 'factory-ca.key',
  issuingCaCert: 'issuing-ca.crt',
  issuingCaKey: 'issuing-ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  devicesDir: 'devices',
} as const

/** DEV_DEVICE_IDS are the factory identities `init` makes; the last one is a gateway. */
export const DEV_DEVICE_IDS = [
  'device-001',
  'device-002',
  'device-003',
  'device-004',
  'device-005',
  'gateway-001',
]

const YEAR_MS = 365 * 24 * 3600 * 1000

function validity(years: number): Pick<CertificateProfile, 'notBefore' | 'notAfter'> {
  const now = Date.now()
  return { notBefore: new Date(now - 3600 * 1000), notAfter: new Date(now + years * YEAR_MS) }
}

/** issue makes a P-256 key and its certificate (self-signed without `issuer`), writes both, returns its signer. */
async function issue(
  dir: string,
  base: string,
  profile: CertificateProfile,
  issuer?: Signer,
): Promise<Signer> {
  const keys = await generateKey('ECDSA-P256')
  const self = selfSigner(profile, keys)
  const der = buildCertificate(profile, spkiDer(keys.publicKey), issuer ?? self).der
  await writeFile(join(dir, `${base}.crt`), toPem(der, 'CERTIFICATE'))
  const keyPem = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  await writeFile(join(dir, `${base}.key`), keyPem, { mode: 0o600 })
  return self
}

const caProfile = (commonName: string): CertificateProfile => ({
  commonName,
  organization: 'mqtt-registration-bridge development',
  isCa: true,
  pathLength: 0,
  keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  ...validity(10),
})

/** devPkiExists tells whether a development PKI is already in `dir`. */
export function devPkiExists(dir: string): Promise<boolean> {
  return stat(join(dir, DEV_PKI_FILES.issuingCaCert)).then(
    () => true,
    () => false,
  )
}

/**
 * createDevPki writes a development PKI: factory CA and factory device certificates, the issuing CA,
 * and a server certificate for localhost. Refuses to overwrite an existing one unless `force` is set.
 */
export async function createDevPki(dir: string, options: { force?: boolean } = {}): Promise<void> {
  if (!options.force && (await devPkiExists(dir))) {
    throw new Error(`a PKI already exists in ${dir}; use --force to overwrite it`)
  }
  const devices = join(dir, DEV_PKI_FILES.devicesDir)
  await mkdir(devices, { recursive: true, mode: 0o700 })
  const factory = await issue(dir, 'factory-ca', caProfile('Development Factory CA'))
  const issuing = await issue(dir, 'issuing-ca', caProfile('Development Issuing CA'))
  const server: CertificateProfile = {
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['serverAuth'],
    ...validity(2),
  }
  await issue(dir, 'server', server, issuing)
  for (const id of DEV_DEVICE_IDS) {
    const profile: CertificateProfile = {
      commonName: id,
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['clientAuth'],
      ...validity(10),
    }
    await issue(devices, id, profile, factory)
  }
}
