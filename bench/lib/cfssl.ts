import { spawnSync } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCertificate, type CertificateProfile } from '../../src/pki/certificate.js'
import { generateKey, spkiDer } from '../../src/pki/keys.js'
import { toPem } from '../../src/pki/pem.js'
import { selfSigner } from '../../src/pki/signer.js'
import { freePort } from '../../test/support/ports.js'
import { start } from '../../test/support/process.js'
import type { IssuanceRow } from '../issuance.js'

/**
 * cfsslRate signs the same CSRs with cfssl (Debian's golang-cfssl) through its HTTP API, 8 requests in flight.
 * Go uses every core, so this is per machine, not per core. Undefined when cfssl is not installed.
 */
export async function cfsslRate(ms: number, csrs: string[]): Promise<IssuanceRow | undefined> {
  if (spawnSync('cfssl', ['version']).error) return undefined
  const dir = await mkdtemp(join(tmpdir(), 'mrb-cfssl-'))
  const keys = await generateKey('ECDSA-P256')
  const profile: CertificateProfile = {
    commonName: 'cfssl CA',
    isCa: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86400_000),
  }
  await writeFile(
    join(dir, 'ca.pem'),
    toPem(buildCertificate(profile, spkiDer(keys.publicKey), selfSigner(profile, keys)).der, 'CERTIFICATE'),
  )
  await writeFile(join(dir, 'ca-key.pem'), keys.privateKey.export({ format: 'pem', type: 'sec1' }).toString())
  const port = await freePort()
  const server = start('cfssl', [
    'serve',
    '-address',
    '127.0.0.1',
    '-port',
    String(port),
    '-ca',
    join(dir, 'ca.pem'),
    '-ca-key',
    join(dir, 'ca-key.pem'),
  ])
  try {
    await server.waitFor(/Now listening|listening on/i)
    const sign = async (pem: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/cfssl/sign`, {
        method: 'POST',
        body: JSON.stringify({ certificate_request: pem, hosts: ['device.devices.example'] }),
      })
      const body = (await res.json()) as { success: boolean; errors?: unknown }
      if (!body.success) throw new Error(`cfssl: ${JSON.stringify(body.errors)}`)
    }
    await sign(csrs[0] ?? '')
    const started = performance.now()
    let done = 0
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        while (performance.now() - started < ms) {
          await sign(csrs[(done + w) % csrs.length] ?? '')
          done++
        }
      }),
    )
    const perSecond = Math.round(done / ((performance.now() - started) / 1000))
    return {
      implementation: 'cfssl 1.2 (Go, HTTP API, all cores)',
      caKey: 'ECDSA-P256',
      perSecond,
      note: 'includes HTTP; not per core',
    }
  } finally {
    server.kill()
    await server.exited
  }
}
