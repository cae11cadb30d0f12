import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openssl } from './tools.js'

/** P256 is openssl's option for an ECDSA P-256 key. */
export const P256 = ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']

/** OpensslCsr is a CSR and where its private key was written. */
export interface OpensslCsr {
  readonly csr: string
  readonly keyFile: string
}

/** opensslCsr makes a key and a CSR with the openssl CLI, as a device toolchain would (UTF-8 subject). */
export async function opensslCsr(
  subject: string,
  key: readonly string[] = P256,
  extra: readonly string[] = [],
): Promise<OpensslCsr> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-csr-'))
  const keyFile = join(dir, 'device.key')
  const csrFile = join(dir, 'device.csr')
  await openssl([
    'req',
    '-new',
    '-newkey',
    ...key,
    '-nodes',
    '-keyout',
    keyFile,
    '-utf8',
    '-subj',
    subject,
    ...extra,
    '-out',
    csrFile,
  ])
  return { csr: await readFile(csrFile, 'utf8'), keyFile }
}
