import { readFile } from 'node:fs/promises'
import type { DeviceTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { createTestPki, type TestPki } from '../../test/support/pki.js'

/** BenchPki is a development PKI plus `count` extra factory identities for concurrent load. */
export interface BenchPki {
  readonly pki: TestPki
  readonly devices: { readonly id: string; readonly tls: DeviceTls }[]
}

/** createBenchPki makes the PKI and the device identities the load generator connects as. */
export async function createBenchPki(count: number): Promise<BenchPki> {
  const pki = await createTestPki()
  const caPem = await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  const devices = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const id = `bench-${String(i).padStart(5, '0')}`
      const files = await pki.makeDevice(id, { notAfter: new Date(Date.now() + 7 * 24 * 3600_000) })
      return {
        id,
        tls: {
          certPem: await readFile(files.certFile, 'utf8'),
          keyPem: await readFile(files.keyFile, 'utf8'),
          caPem,
        },
      }
    }),
  )
  return { pki, devices }
}
