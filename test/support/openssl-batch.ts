import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openssl, run } from './tools.js'

// openssl 3.0 exits 0 even when the self-signature fails: read its verdict too
const LOOP = `for f in "$@"; do
  out=$(openssl req -inform DER -in "$f" -verify -noout 2>&1); rc=$?
  case "$out" in *"self-signature verify OK"*) echo "$rc" ;; *) echo fail ;; esac
done`

/**
 * opensslReqVerify runs `openssl req -verify` on each DER request, in two shell loops (one per core) rather
 * than one spawn from node per input; returns true where openssl accepts the request.
 */
export async function opensslReqVerify(requests: readonly Buffer[]): Promise<boolean[]> {
  if (requests.length === 0) return []
  const dir = await mkdtemp(join(tmpdir(), 'mrb-req-'))
  const files = await Promise.all(
    requests.map(async (der, i) => {
      const file = join(dir, `${i}.der`)
      await writeFile(file, der)
      return file
    }),
  )
  const half = Math.ceil(files.length / 2)
  const chunks = [files.slice(0, half), files.slice(half)].filter((c) => c.length)
  const outputs = await Promise.all(
    chunks.map((chunk) => run('sh', ['-c', LOOP, 'sh', ...chunk], { timeoutMs: 120_000 })),
  )
  const codes = outputs.flatMap((o) => o.stdout.trim().split('\n'))
  if (codes.length !== requests.length)
    throw new Error(`openssl loop answered ${codes.length} of ${requests.length}`)
  return codes.map((c) => c === '0')
}

/**
 * opensslVerifyStrict checks certificates (PEM) against a CA file with `openssl verify -x509_strict`, in one
 * process; returns the names of those that do not verify, with openssl's output.
 */
export async function opensslVerifyStrict(
  caFile: string,
  certificates: readonly string[],
): Promise<string[]> {
  if (certificates.length === 0) return []
  const dir = await mkdtemp(join(tmpdir(), 'mrb-crt-'))
  const files = await Promise.all(
    certificates.map(async (pem, i) => {
      const file = join(dir, `${i}.pem`)
      await writeFile(file, pem)
      return file
    }),
  )
  const result = await run(
    'openssl',
    ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, ...files],
    {
      timeoutMs: 120_000,
    },
  )
  const ok = new Set(
    result.stdout
      .split('\n')
      .filter((l) => l.endsWith(': OK'))
      .map((l) => l.slice(0, -4)),
  )
  return files.filter((f) => !ok.has(f)).map((f) => `${f}: ${result.stdout}${result.stderr}`)
}

/** opensslCa makes an ECDSA P-256 CA with the openssl CLI; returns its certificate and key files. */
export async function opensslCa(): Promise<{ certFile: string; keyFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-ca-'))
  const keyFile = join(dir, 'ca.key')
  const certFile = join(dir, 'ca.crt')
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile])
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=Corpus CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    certFile,
  ])
  return { certFile, keyFile }
}
