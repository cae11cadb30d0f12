import { X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { createTestPki, type TestPki } from '../support/pki.js'
import { rawConnect } from '../support/raw-mqtt.js'
import { openssl } from '../support/tools.js'

/** FactoryCert describes a device certificate made by the openssl CLI with the factory CA. */
interface FactoryCert {
  readonly subject: string
  readonly multivalue?: boolean
  /** openssl string_mask, e.g. MASK:0x800 for BMPString. */
  readonly stringMask?: string
  readonly ext?: string
  readonly selfSigned?: boolean
}

const DEVICE_EXT =
  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'

/** factoryCert writes <name>.crt/.key in the test PKI's devices folder, made and signed by openssl. */
async function factoryCert(pki: TestPki, name: string, spec: FactoryCert): Promise<void> {
  const { certFile, keyFile } = pki.device(name)
  const dir = pki.file(DEV_PKI_FILES.devicesDir)
  const cnf = join(dir, `${name}.cnf`)
  const ext = join(dir, `${name}.ext`)
  const csr = join(dir, `${name}.csr`)
  await writeFile(cnf, `[req]\ndistinguished_name=dn\nstring_mask=${spec.stringMask ?? 'utf8only'}\n[dn]\n`)
  await writeFile(ext, spec.ext ?? DEVICE_EXT)
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile])
  const multi = spec.multivalue ? ['-multivalue-rdn'] : []
  await openssl([
    'req',
    '-new',
    '-config',
    cnf,
    '-utf8',
    ...multi,
    '-key',
    keyFile,
    '-subj',
    spec.subject,
    '-out',
    csr,
  ])
  const signer = spec.selfSigned
    ? ['-signkey', keyFile]
    : ['-CA', pki.file(DEV_PKI_FILES.factoryCaCert), '-CAkey', pki.file(DEV_PKI_FILES.factoryCaKey)]
  await openssl(['x509', '-req', '-in', csr, ...signer, '-days', '1', '-extfile', ext, '-out', certFile])
}

/** connack connects with a device's factory certificate and returns the CONNACK return code (or 'tls'). */
async function connack(bridge: TestBridge, name: string): Promise<number | 'tls'> {
  const conn = await rawConnect(bridge, name).catch(() => undefined)
  if (!conn) return 'tls'
  const packet = await conn.connect(`${name}-client`)
  conn.close()
  if (!packet) return 'tls'
  return (packet as { returnCode?: number }).returnCode ?? -1
}

/** subscribes tells whether a connected device may subscribe to the reply topic of `id`: its identity is `id`. */
async function identityIs(bridge: TestBridge, name: string, id: string): Promise<boolean> {
  const conn = await rawConnect(bridge, name)
  const ack = (await conn.connect(`${name}-client`)) as { returnCode?: number }
  expect(ack.returnCode).toBe(0)
  conn.send({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [{ topic: `registration/${id}/reply`, qos: 1 }],
  })
  const suback = (await conn.nextPacket()) as { granted?: number[] } | null
  conn.close()
  return suback?.granted?.[0] === 1
}

let pki: TestPki
let bridge: TestBridge
const CASES: [string, FactoryCert, number | 'tls', string?][] = [
  ['empty-subject', { subject: '/', ext: `${DEVICE_EXT}subjectAltName=DNS:empty.example\n` }, 5],
  ['no-cn', { subject: '/O=Factory/OU=Line 3' }, 5],
  ['two-cns', { subject: '/CN=unit-a/CN=unit-b' }, 5, 'exactly one subject-cn, found 2'],
  ['multi-valued-rdn', { subject: '/O=Factory+CN=unit-mv', multivalue: true }, 0, 'unit-mv'],
  ['multi-valued-two-cns', { subject: '/CN=unit-x+CN=unit-y', multivalue: true }, 5],
  ['bmp-string', { subject: '/CN=unit-bmp', stringMask: 'MASK:0x800' }, 0, 'unit-bmp'],
  ['printable-string', { subject: '/CN=unit-printable', stringMask: 'MASK:0x2' }, 0, 'unit-printable'],
  ['teletex-string', { subject: '/CN=unit-t61', stringMask: 'MASK:0x4' }, 0, 'unit-t61'],
  ['universal-string', { subject: '/CN=unit-univ', stringMask: 'MASK:0x100' }, 0, 'unit-univ'],
  ['cn-with-newline-and-fake-cn', { subject: '/O=x\nCN=device-001/CN=unit-nl' }, 0, 'unit-nl'],
  ['san-only', { subject: '/', ext: `${DEVICE_EXT}subjectAltName=critical,DNS:sanonly.example\n` }, 5],
  ['utf8-non-ascii-cn', { subject: '/CN=capteur-é' }, 5],
  [
    'ca-certificate',
    {
      subject: '/CN=unit-ca',
      ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyCertSign\n',
    },
    5,
    'is a CA certificate',
  ],
  [
    'server-auth-only',
    {
      subject: '/CN=unit-server',
      ext: 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
    },
    'tls',
  ],
]

beforeAll(async () => {
  pki = await createTestPki()
  await Promise.all(CASES.map(([name, spec]) => factoryCert(pki, name, spec)))
  bridge = await startTestBridge([], pki)
})
afterAll(async () => {
  await bridge?.stop()
})

describe('no client certificate crashes the bridge: an identity or a documented refusal', () => {
  it.each(CASES)('%s', async (name, _spec, code, id) => {
    expect(await connack(bridge, name)).toBe(code)
    // for an accepted certificate: the identity it gets; for a refused one: the reason logged
    if (id && code === 0) expect(await identityIs(bridge, name, id)).toBe(true)
    if (id && code === 5) expect(bridge.logs.some((l) => l.includes(id))).toBe(true)
  })

  it('refuses to start when a self-signed device certificate sits in the factory CA bundle', async () => {
    // an end-entity certificate there is the wrong file: it would be trusted as a CA (docs/operations.md)
    await factoryCert(pki, 'self-signed', { subject: '/CN=unit-self', selfSigned: true })
    const bundle = join(pki.dir, 'bundle.crt')
    await writeFile(
      bundle,
      (await readFile(pki.file(DEV_PKI_FILES.factoryCaCert), 'utf8')) +
        (await readFile(pki.device('self-signed').certFile, 'utf8')),
    )
    await expect(startTestBridge([`tls.clientCaFile=${bundle}`], pki)).rejects.toThrow(
      /tls\.clientCaFile: CN=unit-self is an end-entity certificate/,
    )
  })

  it('is still serving devices after all of the above', async () => {
    expect(await identityIs(bridge, 'device-001', 'device-001')).toBe(true)
  })
})

describe('URI identities (identity.source=san-uri)', () => {
  it.each([
    ['spiffe://example.org/device/', 'spiffe://example.org/device/sensor-7', 'sensor-7'],
    ['urn:example:device:', 'urn:example:device:sensor-8', 'sensor-8'],
  ])(
    'maps %s + identity both ways, and issues a certificate carrying the same URI',
    async (prefix, uri, id) => {
      const name = `uri-${id}`
      await factoryCert(pki, name, { subject: '/O=Factory', ext: `${DEVICE_EXT}subjectAltName=URI:${uri}\n` })
      const uriBridge = await startTestBridge(
        ['identity.source=san-uri', `identity.uriPrefix=${prefix}`, `certificate.uris=${prefix}{deviceId}`],
        pki,
      )
      try {
        expect(await identityIs(uriBridge, name, id)).toBe(true)
        const { register } = await import('../../src/client/index.js')
        const tls = {
          certPem: await readFile(pki.device(name).certFile, 'utf8'),
          keyPem: await readFile(pki.device(name).keyFile, 'utf8'),
          caPem: await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8'),
        }
        const issued = await register({ url: uriBridge.url, identity: id, csr: true, ...tls })
        const cert = new X509Certificate(issued.certificatePem)
        expect(cert.subject).toBe(`CN=${id}`)
        expect(cert.subjectAltName).toBe(`URI:${uri}`)
      } finally {
        await uriBridge.stop()
      }
    },
  )

  it('refuses URIs that are not the prefix followed by one identity (return code 5)', async () => {
    const prefix = 'spiffe://example.org/device/'
    const uris = [
      'spiffe://example.org/other/x',
      'spiffe://example.org/device/a/b',
      'spiffe://example.org/device/',
    ]
    await Promise.all(
      uris.map((u, i) =>
        factoryCert(pki, `bad-uri-${i}`, { subject: '/', ext: `${DEVICE_EXT}subjectAltName=URI:${u}\n` }),
      ),
    )
    const uriBridge = await startTestBridge(['identity.source=san-uri', `identity.uriPrefix=${prefix}`], pki)
    try {
      for (const [i] of uris.entries()) expect(await connack(uriBridge, `bad-uri-${i}`)).toBe(5)
    } finally {
      await uriBridge.stop()
    }
  })
})

describe('TLS itself', () => {
  it('refuses a device without a certificate before any MQTT', async () => {
    const socket = connect({ host: 'localhost', port: bridge.port, rejectUnauthorized: false })
    const outcome = await new Promise<string>((resolve) => {
      socket.once('secureConnect', () => socket.once('close', () => resolve('closed')))
      socket.once('error', () => resolve('error'))
    })
    socket.destroy()
    expect(['closed', 'error']).toContain(outcome)
  })
})
