import { readFile } from 'node:fs/promises'
import type { DeviceTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { createTestPki, type TestPki } from '../../test/support/pki.js'

/** BenchDevice is one factory identity the load generator connects as. */
export interface BenchDevice {
  readonly id: string
  readonly tls: DeviceTls
}

/** BenchPki is a development PKI plus `count` extra factory identities for concurrent load. */
export interface BenchPki {
  readonly pki: TestPki
  readonly devices: BenchDevice[]
}

/** makeDevices issues factory certificates named `<prefix><n>` in a PKI and loads them for connecting. */
export async function makeDevices(pki: TestPki, count: number, prefix: string): Promise<BenchDevice[]> {
  const caPem = await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const id = `${prefix}${String(i).padStart(5, '0')}`
      const files = await pki.makeDevice(id, { notAfter: new Date(Date.now() + 7 * 24 * 3600_000) })
      const [certPem, keyPem] = await Promise.all([
        readFile(files.certFile, 'utf8'),
        readFile(files.keyFile, 'utf8'),
      ])
      return { id, tls: { certPem, keyPem, caPem } }
    }),
  )
}

/** createBenchPki makes the PKI and the device identities the load generator connects as. */
export async function createBenchPki(count: number): Promise<BenchPki> {
  const pki = await createTestPki()
  return { pki, devices: await makeDevices(pki, count, 'bench-') }
}
