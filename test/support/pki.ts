import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCertificate, type CertificateProfile } from '../../src/pki/certificate.js'
import { createDevPki, DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { generateKey, spkiDer } from '../../src/pki/keys.js'
import { toPem } from '../../src/pki/pem.js'
import { loadCa, selfSigner } from '../../src/pki/signer.js'

/** TestPki is a development PKI in a fresh temporary directory. */
export interface TestPki {
  readonly stateDir: string
  readonly dir: string
  file(name: string): string
  device(id: string): { certFile: string; keyFile: string }
  /** makeDevice issues an extra factory certificate (any CN, any validity, optionally self-signed). */
  makeDevice(
    name: string,
    options?: {
      commonName?: string
      notBefore?: Date
      notAfter?: Date
      selfSigned?: boolean
      dnsNames?: string[]
    },
  ): Promise<{ certFile: string; keyFile: string }>
}

/** createTestPki writes a development PKI under `stateDir` (default: a new temporary directory). */
export async function createTestPki(stateDirectory?: string): Promise<TestPki> {
  const stateDir = stateDirectory ?? (await mkdtemp(join(tmpdir(), 'mrb-test-')))
  await createDevPki(join(stateDir, 'pki'))
  return openTestPki(stateDir)
}

/** openTestPki works with a development PKI that already exists under `stateDir`. */
export function openTestPki(stateDir: string): TestPki {
  const dir = join(stateDir, 'pki')
  const file = (name: string): string => join(dir, name)
  const device = (id: string) => ({
    certFile: join(dir, DEV_PKI_FILES.devicesDir, `${id}.crt`),
    keyFile: join(dir, DEV_PKI_FILES.devicesDir, `${id}.key`),
  })
  return {
    stateDir,
    dir,
    file,
    device,
    async makeDevice(name, options = {}) {
      const keys = await generateKey('ECDSA-P256')
      const now = Date.now()
      const profile: CertificateProfile = {
        commonName: options.commonName ?? name,
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['clientAuth'],
        ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}),
        notBefore: options.notBefore ?? new Date(now - 3600_000),
        notAfter: options.notAfter ?? new Date(now + 24 * 3600_000),
      }
      const factory = loadCa(
        await readFile(file(DEV_PKI_FILES.factoryCaCert), 'utf8'),
        await readFile(file(DEV_PKI_FILES.factoryCaKey), 'utf8'),
      )
      const signer = options.selfSigned ? selfSigner(profile, keys) : factory.signer
      const paths = device(name)
      await writeFile(
        paths.certFile,
        toPem(buildCertificate(profile, spkiDer(keys.publicKey), signer).der, 'CERTIFICATE'),
      )
      await writeFile(paths.keyFile, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())
      return paths
    },
  }
}
