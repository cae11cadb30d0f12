import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Signer } from '../../src/pki/certificate.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { IssuedReply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { connectDevice, tlsFor } from '../support/device.js'
import { scrapeMetrics } from '../support/metrics.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import {
  createSecretMount,
  makeCa,
  makeServerCertificate,
  type SecretMount,
  signerOf,
} from '../support/rotation.js'
import { run } from '../support/tools.js'

// Every kind of TLS material the bridge rotates (listener pair, factory CA bundle, production CA bundle,
// embedded CA), broken every way: what a reload refuses keeps the material in force (log line, refused
// counter, /readyz still 200 and true), and the same material refused at start-up is a configuration error.

const HOUR = 3600_000
const DAY = 24 * HOUR
const NOT_YET_VALID = { notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * DAY) }
const EXPIRED = { notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - HOUR) }

type Files = Record<string, string | null>
type Build = () => Promise<Files>
type Break =
  | 'empty'
  | 'truncated'
  | 'unreadable'
  | 'invalid'
  | 'not yet valid'
  | 'expired'
  | 'wrong kind'
  | 'key mismatch'

let pki: TestPki
let issuing: Signer
let factory: Signer
const read = (file: string): string => readFileSync(pki.file(file), 'utf8')
const half = (pem: string): string => pem.slice(0, Math.floor(pem.length / 2))

/** A pair of files (certificate, key): the listener's Secret, the embedded CA's. */
function pairBreaks(kind: 'server' | 'ca', current: () => { cert: string; key: string }) {
  const make = (validity: { notBefore: Date; notAfter: Date }) =>
    kind === 'server'
      ? makeServerCertificate(issuing, 'localhost', 'serverAuth', validity)
      : makeCa('CA', validity)
  const files = (p: { certPem: string; keyPem: string }): Files => ({
    'tls.crt': p.certPem,
    'tls.key': p.keyPem,
  })
  const builds: Record<Break, Build> = {
    empty: async () => ({ 'tls.crt': '', 'tls.key': '' }),
    truncated: async () => ({ 'tls.crt': half(current().cert), 'tls.key': current().key }),
    unreadable: async () => ({ 'tls.crt': null, 'tls.key': current().key }),
    invalid: async () => ({ 'tls.crt': 'not a certificate\n', 'tls.key': 'not a key\n' }),
    'not yet valid': async () => files(await make(NOT_YET_VALID)),
    expired: async () => files(await make(EXPIRED)),
    // a CA where the listener's own certificate belongs; an end-entity certificate where a CA belongs
    'wrong kind': async () =>
      files(kind === 'server' ? await makeCa('Not a server') : await makeServerCertificate(issuing)),
    'key mismatch': async () => {
      const a = kind === 'server' ? await makeServerCertificate(issuing) : await makeCa('CA a')
      const b = kind === 'server' ? await makeServerCertificate(issuing) : await makeCa('CA b')
      return { 'tls.crt': a.certPem, 'tls.key': b.keyPem }
    },
  }
  return builds
}

/** A CA bundle (factory CAs, production CAs): one file, no key. */
function bundleBreaks(current: () => string): Partial<Record<Break, Build>> {
  const ca = async (validity: { notBefore: Date; notAfter: Date }) => ({
    'ca.crt': (await makeCa('Bundle CA', validity)).certPem,
  })
  return {
    empty: async () => ({ 'ca.crt': '' }),
    truncated: async () => ({ 'ca.crt': half(current()) }),
    unreadable: async () => ({ 'ca.crt': null }),
    invalid: async () => ({ 'ca.crt': 'not a certificate\n' }),
    'not yet valid': () => ca(NOT_YET_VALID),
    expired: () => ca(EXPIRED),
    // a device's certificate in the factory CA bundle: the wrong file
    'wrong kind': async () => ({
      'ca.crt': (await makeServerCertificate(factory, 'device-x', 'clientAuth')).certPem,
    }),
  }
}

interface Material {
  readonly name: 'listener' | 'factory_ca' | 'production_ca' | 'issuing_ca'
  readonly setting: RegExp
  readonly breaks: Partial<Record<Break, Build>>
  /** settings that point the bridge at these files */
  sets(files: Record<string, string>): string[]
}

let materials: Material[] = []
let productionCaPem: string

beforeAll(async () => {
  pki = await createTestPki()
  issuing = await signerOf(pki.file(DEV_PKI_FILES.issuingCaCert), pki.file(DEV_PKI_FILES.issuingCaKey))
  factory = await signerOf(pki.file(DEV_PKI_FILES.factoryCaCert), pki.file(DEV_PKI_FILES.factoryCaKey))
  productionCaPem = (await makeCa('Production CA')).certPem
  materials = [
    {
      name: 'listener',
      setting: /tls\.(certFile|keyFile)/,
      breaks: pairBreaks('server', () => ({
        cert: read(DEV_PKI_FILES.serverCert),
        key: read(DEV_PKI_FILES.serverKey),
      })),
      sets: (f) => [`tls.certFile=${f['tls.crt']}`, `tls.keyFile=${f['tls.key']}`],
    },
    {
      name: 'factory_ca',
      setting: /tls\.clientCaFile/,
      breaks: bundleBreaks(() => read(DEV_PKI_FILES.factoryCaCert)),
      sets: (f) => [`tls.clientCaFile=${f['ca.crt']}`],
    },
    {
      name: 'production_ca',
      setting: /production\.caFile/,
      breaks: bundleBreaks(() => productionCaPem),
      sets: (f) => [`production.caFile=${f['ca.crt']}`],
    },
    {
      name: 'issuing_ca',
      setting: /issuer\.localCa/,
      breaks: pairBreaks('ca', () => ({
        cert: read(DEV_PKI_FILES.issuingCaCert),
        key: read(DEV_PKI_FILES.issuingCaKey),
      })),
      sets: (f) => [`issuer.localCa.certFile=${f['tls.crt']}`, `issuer.localCa.keyFile=${f['tls.key']}`],
    },
  ]
})

/** goodFiles writes the test PKI's material (and a production CA) as plain files; returns every setting. */
async function goodSets(dir: string): Promise<Record<Material['name'], Record<string, string>>> {
  const write = async (name: string, content: string): Promise<string> => {
    const path = join(dir, name)
    await writeFile(path, content)
    return path
  }
  return {
    listener: {
      'tls.crt': await write('server.crt', read(DEV_PKI_FILES.serverCert)),
      'tls.key': await write('server.key', read(DEV_PKI_FILES.serverKey)),
    },
    factory_ca: { 'ca.crt': await write('factory-ca.crt', read(DEV_PKI_FILES.factoryCaCert)) },
    production_ca: { 'ca.crt': await write('production-ca.crt', productionCaPem) },
    issuing_ca: {
      'tls.crt': await write('issuing-ca.crt', read(DEV_PKI_FILES.issuingCaCert)),
      'tls.key': await write('issuing-ca.key', read(DEV_PKI_FILES.issuingCaKey)),
    },
  }
}

const NAMES = ['listener', 'factory_ca', 'production_ca', 'issuing_ca'] as const
const BUNDLES = new Set<string>(['factory_ca', 'production_ca'])
const ALL_BREAKS: Break[] = [
  'empty',
  'truncated',
  'unreadable',
  'invalid',
  'not yet valid',
  'expired',
  'wrong kind',
  'key mismatch',
]
const START_BREAKS: Break[] = ['not yet valid', 'expired', 'wrong kind', 'key mismatch']
/** casesOf pairs each material with each break that applies to it (a CA bundle has no key to mismatch). */
const casesOf = (breaks: Break[]) =>
  NAMES.flatMap((material) =>
    breaks
      .filter((b) => !(BUNDLES.has(material) && b === 'key mismatch'))
      .map((name) => ({ material, name })),
  )
const materialNamed = (name: Material['name']): Material => materials.find((m) => m.name === name) as Material

describe('at start-up, material a reload would refuse is a configuration error', () => {
  it.each(casesOf(START_BREAKS))('$material: $name', async ({ material: which, name }) => {
    const material = materialNamed(which)
    const dir = await mkdtemp(join(tmpdir(), 'mrb-start-'))
    const sets = await goodSets(dir)
    const broken: Record<string, string> = {}
    for (const [file, content] of Object.entries(await (material.breaks[name] as Build)())) {
      broken[file] = join(dir, `broken-${file}`)
      await writeFile(broken[file], content ?? '')
    }
    const all = { ...sets, [material.name]: broken }
    const started = startTestBridge(
      materials.flatMap((m) => m.sets(all[m.name])),
      pki,
    )
    // a bridge that starts anyway (the bug) is stopped, not leaked
    void started.then((b) => b.stop()).catch(() => {})
    await expect(started).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(material.setting),
    })
  })

  it('serve exits 2 naming the setting (a listener certificate not yet valid)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-start-'))
    const sets = await goodSets(dir)
    const future = await makeServerCertificate(issuing, 'localhost', 'serverAuth', NOT_YET_VALID)
    await writeFile(sets.listener['tls.crt'] as string, future.certPem)
    await writeFile(sets.listener['tls.key'] as string, future.keyPem)
    const cli = new URL('../../dist/cli.js', import.meta.url).pathname
    const result = await run(process.execPath, [
      ...[cli, 'serve', '--state-dir', pki.stateDir, '--host', '127.0.0.1', '--port', '0'],
      ...['--log-level', 'silent', '--set', 'health.port=0'],
      ...materials.flatMap((m) => m.sets(sets[m.name]).flatMap((s) => ['--set', s])),
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/tls\.certFile: the certificate is not valid before \d{4}-/)
  })
})

describe('on reload, refused material keeps the material in force', () => {
  let bridge: TestBridge
  const mounts = new Map<Material['name'], SecretMount>()

  beforeAll(async () => {
    const work = await mkdtemp(join(tmpdir(), 'mrb-material-'))
    const good = await goodSets(work)
    const files: Record<string, Record<string, string>> = {}
    for (const m of materials) {
      const contents = Object.fromEntries(
        Object.entries(good[m.name]).map(([name, path]) => [name, readFileSync(path, 'utf8')]),
      )
      const mount = await createSecretMount(join(work, m.name), contents)
      mounts.set(m.name, mount)
      files[m.name] = Object.fromEntries(Object.keys(contents).map((name) => [name, mount.file(name)]))
    }
    bridge = await startTestBridge(
      [...materials.flatMap((m) => m.sets(files[m.name] ?? {})), 'registration.rateLimit.burst=1000'],
      pki,
    )
  })

  afterAll(async () => {
    await bridge?.stop()
  })

  /** served does a TLS handshake as device-001: the listener certificate's fingerprint, or the error. */
  const served = (): Promise<string> => {
    const device = tlsFor(bridge, pki.device('device-001'))
    return new Promise((resolve) => {
      const socket = connect({
        host: 'localhost',
        port: bridge.port,
        cert: device.certPem,
        key: device.keyPem,
        ca: read(DEV_PKI_FILES.issuingCaCert),
      })
      socket.once('secureConnect', () => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '')
        socket.end()
      })
      socket.once('error', (err) => resolve(err.message))
    })
  }

  const register = async (requestId: string): Promise<IssuedReply> => {
    // an identity per registration: the default re-registration policy refuses a second one
    const id = `device-${requestId.replace(/[^A-Za-z0-9-]/g, '-')}`
    await pki.makeDevice(id)
    const device = await connectDevice(bridge, id)
    await device.send({ requestId, keyAlgorithm: 'ECDSA-P256' })
    const reply = await device.nextReply()
    await device.end()
    expect(reply.status).toBe('issued')
    return reply as IssuedReply
  }

  /** inForce checks the material the bridge started with still serves. */
  const inForce: Record<Material['name'], (id: string) => Promise<void>> = {
    listener: async () => {
      expect(await served()).toBe(new X509Certificate(read(DEV_PKI_FILES.serverCert)).fingerprint256)
    },
    // device-001's factory certificate is still verified (served() is its handshake)
    factory_ca: async () => {
      expect(await served()).toMatch(/^[0-9A-F:]{95}$/)
    },
    production_ca: async (id) => {
      expect((await register(id)).caCertificates).toContain(productionCaPem.trim())
    },
    issuing_ca: async (id) => {
      const reply = await register(id)
      const ca = new X509Certificate(read(DEV_PKI_FILES.issuingCaCert))
      expect(new X509Certificate(reply.certificate).verify(ca.publicKey)).toBe(true)
    },
  }

  const refused = async (material: string): Promise<number> =>
    (await scrapeMetrics(bridge.bridge.healthPort as number)).sample(
      'mqtt_registration_bridge_tls_reloads_total',
      { material, result: 'refused' },
    ) ?? 0

  const readyz = async (): Promise<number> =>
    (await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}/readyz`)).status

  it.each(casesOf(ALL_BREAKS))('$material: $name', async ({ material: which, name }) => {
    const material = materialNamed(which)
    const before = await refused(material.name)
    const logged = bridge.waitForLog('TLS material refused; keeping the current one')
    const from = bridge.logs.length
    await mounts.get(material.name)?.update(await (material.breaks[name] as Build)())
    await logged
    const line = bridge.logs
      .slice(from)
      .map((l) => JSON.parse(l) as { msg: string; material?: string })
      .find((l) => l.msg === 'TLS material refused; keeping the current one')
    expect(line?.material).toBe(material.name)
    expect(await refused(material.name)).toBe(before + 1)
    await inForce[material.name](`${material.name}-${name.replaceAll(' ', '-')}`)
    expect(await readyz()).toBe(200)
  })
})
