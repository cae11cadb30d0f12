import { spawn } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Reply } from '../../src/protocol/messages.js'
import type { TestBridge } from './bridge.js'
import { run } from './tools.js'

// Two independent PKCS#12 readers for the bridge's bundles: the openssl CLI (OpenSSL 3, no legacy provider) and
// Python cryptography's loader (Debian's /usr/bin/python3, not the PATH one). Passwords go through a file or
// stdin, never argv.

/** OpensslPkcs12 is what `openssl pkcs12 -info` said of a bundle. */
export interface OpensslPkcs12 {
  readonly code: number
  /** stderr: the MAC and PBES2 parameters (`MAC: sha256, Iteration 2048`, `PBES2, PBKDF2, AES-256-CBC, ...`). */
  readonly info: string
  /** stdout: the key (unencrypted, -nodes) and certificates as PEM, with their bag attributes. */
  readonly pem: string
}

/** opensslPkcs12 reads a bundle with `openssl pkcs12 -info -nodes -passin file:...` (no -legacy). */
export async function opensslPkcs12(bundle: Buffer, password: string): Promise<OpensslPkcs12> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-p12-'))
  await writeFile(join(dir, 'b.p12'), bundle)
  // openssl reads the first line of the file: the password may hold anything but a line break
  await writeFile(join(dir, 'pass'), `${password}\n`, { mode: 0o600 })
  const r = await run('openssl', ['pkcs12', '-in', 'b.p12', '-info', '-nodes', '-passin', 'file:pass'], {
    cwd: dir,
  })
  return { code: r.code, info: r.stderr, pem: r.stdout }
}

/** PythonPkcs12 is what cryptography's `pkcs12.load_key_and_certificates` read. */
export interface PythonPkcs12 {
  readonly ok: boolean
  readonly error?: string
  /** The key's class name, e.g. `EllipticCurvePrivateKey`, `Ed25519PrivateKey`, `RSAPrivateKey`. */
  readonly keyType?: string
  /** Whether the key's public key is the certificate's. */
  readonly keyMatches?: boolean
  readonly subject?: string
  readonly friendlyName?: string
  /** Subjects of the additional certificates, in order. */
  readonly additional?: string[]
}

const PYTHON = `
import sys, json
from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PublicFormat
data = open(sys.argv[1], 'rb').read()
password = sys.stdin.buffer.read()
try:
    key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    p12 = pkcs12.load_pkcs12(data, password)
except Exception as e:
    print(json.dumps({'ok': False, 'error': type(e).__name__ + ': ' + str(e)}))
    sys.exit(0)
pub = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
name = p12.cert.friendly_name if p12.cert else None
print(json.dumps({
    'ok': True,
    'keyType': [c.__name__ for c in type(key).__mro__ if c.__name__.endswith('PrivateKey')][-1],
    'keyMatches': pub(key.public_key()) == pub(cert.public_key()),
    'subject': cert.subject.rfc4514_string(),
    'friendlyName': name.decode('utf-8') if name else None,
    'additional': [c.subject.rfc4514_string() for c in extra],
}))
`

/** pythonPkcs12 loads a bundle with Python cryptography (the password on stdin, as UTF-8). */
export async function pythonPkcs12(bundle: Buffer, password: string): Promise<PythonPkcs12> {
  const dir = await mkdtemp(join(tmpdir(), 'mrb-p12-'))
  const file = join(dir, 'b.p12')
  await writeFile(file, bundle)
  const child = spawn('/usr/bin/python3', ['-c', PYTHON, file], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  child.stdin.end(Buffer.from(password, 'utf8'))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`python3 failed (${code}): ${err}`)
  return JSON.parse(out) as PythonPkcs12
}

/** opened reads a bundle with both readers and checks it holds the key of `certificate`, with its chain. */
export async function opened(bundle: Buffer, password: string, certificate: string) {
  const o = await opensslPkcs12(bundle, password)
  expect(o.code, o.info).toBe(0)
  expect(o.info).toContain('Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256')
  expect(o.info).toContain('MAC: sha256, Iteration 2048')
  const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(o.pem)?.[0] ?? ''
  expect(new X509Certificate(certificate).checkPrivateKey(createPrivateKey(keyPem))).toBe(true)
  const p = await pythonPkcs12(bundle, password)
  expect(p).toMatchObject({ ok: true, keyMatches: true })
  // the chain: the certificate, then the issuing CA (the bridge's own CA, from caCertificates)
  expect(p.additional).toEqual(['CN=Development Issuing CA,O=mqtt-registration-bridge development'])
  return { keyPem, python: p }
}

export const bundleOf = (reply: Reply): Buffer => {
  if (reply.status !== 'issued') throw new Error(`not issued: ${JSON.stringify(reply)}`)
  expect(reply.privateKey).toBeUndefined()
  return Buffer.from(reply.pkcs12 ?? '', 'base64')
}

/**
 * passwordsFound lists where a password shows: the bridge's log lines (as written, or JSON-escaped) and every file
 * of its state directory (registry, audit log, PKI), as UTF-8 or as a BMPString.
 */
export async function passwordsFound(bridge: TestBridge, passwords: readonly string[]): Promise<string[]> {
  const logs = bridge.logs.join('\n')
  if (!logs.includes('certificate issued')) throw new Error('no issuance in the logs: nothing was searched')
  const files: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else files.push(path)
    }
  }
  await walk(bridge.pki.stateDir)
  const { registry, auditLog } = bridge.bridge.config
  if (!files.includes(registry.file) || !files.includes(auditLog))
    throw new Error('the registry or audit log is not in the state directory: nothing was searched')
  const contents = await Promise.all(files.map((f) => readFile(f)))
  const found: string[] = []
  for (const password of passwords) {
    if (logs.includes(password) || logs.includes(JSON.stringify(password).slice(1, -1)))
      found.push(`logs: ${password}`)
    for (const [i, bytes] of contents.entries())
      for (const encoded of [Buffer.from(password, 'utf8'), Buffer.from(password, 'utf16le').swap16()])
        if (bytes.includes(encoded)) found.push(`${files[i]}: ${password}`)
  }
  return found
}
