// Measures the cost of one PKCS#12 bundle (docs/protocol.md, "PKCS#12 bundles"): CPU per bundle (the event loop's
// share and libuv's PBKDF2) at the default iteration count and at larger ones.
// Run after `npm run build`: node scripts/measure-pkcs12.mjs [bundles]
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { buildCertificate } from '../dist/pki/certificate.js'
import { spkiDer } from '../dist/pki/keys.js'
import { buildPkcs12, PKCS12_ITERATIONS, pkcs12Kdf } from '../dist/pki/pkcs12.js'
import { selfSigner } from '../dist/pki/signer.js'

const count = Number(process.argv[2] ?? 200)
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const now = Date.now()
const profile = {
  commonName: 'device-001',
  keyUsage: ['digitalSignature'],
  notBefore: new Date(now),
  notAfter: new Date(now + 3600_000),
}
const leaf = buildCertificate(profile, spkiDer(keys.publicKey), selfSigner(profile, keys)).der
const contents = {
  privateKeyPem: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  certificates: [leaf, leaf],
  friendlyName: 'device-001',
}
const password = 'correct horse battery staple'
for (const iterations of [PKCS12_ITERATIONS, 10_000, 100_000, 600_000]) {
  const n = Math.max(5, Math.round((count * PKCS12_ITERATIONS) / iterations))
  for (let i = 0; i < 5; i++) await buildPkcs12(contents, password, { iterations }) // warm up
  const cpu = process.cpuUsage()
  const t = performance.now()
  for (let i = 0; i < n; i++) await buildPkcs12(contents, password, { iterations })
  const wall = (performance.now() - t) / n
  const used = process.cpuUsage(cpu)
  const loop = performance.now()
  for (let i = 0; i < n; i++) pkcs12Kdf(password, randomBytes(16), 3, iterations)
  const kdf = (performance.now() - loop) / n
  console.log(
    `${iterations} iterations: ${wall.toFixed(2)} ms per bundle (one at a time), ` +
      `${((used.user + used.system) / 1000 / n).toFixed(2)} ms CPU, of which ${kdf.toFixed(2)} ms the MAC key on the event loop`,
  )
}
