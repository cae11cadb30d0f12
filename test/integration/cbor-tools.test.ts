import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encode } from 'cborg'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { connectDevice, grantedQos } from '../support/device.js'
import { start } from '../support/process.js'
import { startRedis } from '../support/redis.js'
import { openssl, run } from '../support/tools.js'

// The CBOR wire checked by an independent implementation (Debian's python3-cbor2, run by /usr/bin/python3) driving
// the mosquitto clients with binary files, and openssl; malformed CBOR; the access control of the CBOR topics.

const PYTHON = '/usr/bin/python3'
const DEVICE_PY = new URL('../support/cbor2-device.py', import.meta.url).pathname

let bridge: TestBridge
let dir: string

beforeAll(async () => {
  bridge = await startTestBridge()
  dir = await mkdtemp(join(tmpdir(), 'mrb-cbor-'))
})

afterAll(async () => {
  await bridge?.stop()
})

function tlsArgs(id: string): string[] {
  const { certFile, keyFile } = bridge.pki.device(id)
  const ca = bridge.pki.file(DEV_PKI_FILES.issuingCaCert)
  return ['-h', 'localhost', '-p', String(bridge.port), '--cafile', ca, '--cert', certFile, '--key', keyFile]
}

async function python(args: string[]): Promise<string> {
  const result = await run(PYTHON, [DEVICE_PY, ...args])
  if (result.code !== 0) throw new Error(`cbor2-device.py ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}

/**
 * exchange sends a request file with mosquitto_pub -f on the CBOR request topic and returns the file in which
 * mosquitto_sub (-N: the payload's bytes only) wrote the one reply on the CBOR reply topic.
 */
async function exchange(id: string, requestFile: string): Promise<string> {
  const replyFile = join(dir, `${id}-reply.cbor`)
  const subscribed = bridge.waitForLog('subscribed')
  const sub = start('sh', [
    '-c',
    'exec mosquitto_sub "$@" > "$0"',
    replyFile,
    ...tlsArgs(id),
    ...['-q', '1', '-t', `registration/${id}/reply/cbor`, '-C', '1', '-N', '-W', '20'],
  ])
  await subscribed
  const pub = await run('mosquitto_pub', [
    ...tlsArgs(id),
    '-q',
    '1',
    '-t',
    'registration/request/cbor',
    '-f',
    requestFile,
  ])
  expect(pub.code).toBe(0)
  expect(await sub.exited).toBe(0)
  return replyFile
}

/** verified converts the reply's DER files to PEM and has openssl verify the certificate with its CA certificates. */
async function verified(prefix: string, count: number): Promise<string> {
  const pems: string[] = []
  for (let i = 0; i < count; i++) {
    pems.push(await openssl(['x509', '-inform', 'DER', '-in', join(dir, `caCertificates-${i}.der`)]))
  }
  const caFile = join(dir, `${prefix}-ca.pem`)
  await writeFile(caFile, pems.join(''))
  const leaf = join(dir, `${prefix}-leaf.pem`)
  await openssl(['x509', '-inform', 'DER', '-in', join(dir, 'certificate-0.der'), '-out', leaf])
  return openssl(['verify', '-x509_strict', '-CAfile', caFile, leaf])
}

describe('python3-cbor2 with mosquitto_pub -f and mosquitto_sub -N', () => {
  it('server-key: the reply decodes with cbor2, its DER key fits its certificate, and openssl verifies it', async () => {
    const requestFile = join(dir, 'sk.cbor')
    await python(['request', requestFile, 'py-sk'])
    const reply = JSON.parse(await python(['reply', await exchange('device-001', requestFile), dir]))
    expect(reply).toMatchObject({
      version: 1,
      status: 'issued',
      requestId: 'py-sk',
      certificate: [{ bytes: expect.any(Number) }],
      privateKey: { bytes: expect.any(Number) },
      serialNumber: expect.stringMatching(/^[0-9a-f]+$/),
      notBefore: expect.any(Number),
      keyFits: true,
      notAfterFits: true,
      serialFits: true,
      subject: 'CN=device-001',
    })
    expect(await verified('sk', reply.caCertificates.length)).toContain(': OK')
  })

  it('CSR mode: a DER CSR made by python3-cryptography; the certificate is for its key', async () => {
    const requestFile = join(dir, 'csr.cbor')
    const keyFile = join(dir, 'csr-key.pem')
    await python(['request', requestFile, 'py-csr', 'device-002', keyFile])
    const reply = JSON.parse(await python(['reply', await exchange('device-002', requestFile), dir, keyFile]))
    expect(reply).toMatchObject({
      status: 'issued',
      requestId: 'py-csr',
      keyFits: true,
      subject: 'CN=device-002',
    })
    expect(reply.privateKey).toBeUndefined()
    expect(await verified('csr', reply.caCertificates.length)).toContain(': OK')
  })

  it('garbage on the CBOR topic is answered in CBOR on the CBOR reply topic', async () => {
    const requestFile = join(dir, 'deep.cbor')
    await writeFile(
      requestFile,
      Buffer.concat([Buffer.from('a1617a', 'hex'), Buffer.alloc(10_000, 0x81), Buffer.of(0)]),
    )
    const reply = JSON.parse(await python(['reply', await exchange('device-003', requestFile), dir]))
    expect(reply).toMatchObject({
      version: 1,
      status: 'rejected',
      error: { code: 'MALFORMED_REQUEST', retryable: false },
    })
    expect(reply.error.message).toContain('nesting deeper than 8 levels')
  })
})

describe('malformed CBOR', () => {
  const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')
  const KINDS: [string, Buffer][] = [
    ['truncated', hex('a2 69 726571756573744964 63 722d31 63 637372 58 40 3081')],
    ['an indefinite-length map', hex('bf 69 726571756573744964 61 61 ff')],
    ['an indefinite-length byte string', hex('a1 63 637372 5f 42 3081 ff')],
    ['a repeated map key', hex('a2 69 726571756573744964 61 61 69 726571756573744964 61 62')],
    ['a huge declared byte string', hex('a1 63 637372 5b 00000000ffffffff')],
    ['a huge declared map', hex('bb 00ffffffffffffff 00')],
    ['deep nesting', Buffer.concat([hex('a1 61 78'), Buffer.alloc(16_000, 0x81), Buffer.of(0)])],
    ['JSON on the CBOR topic', Buffer.from('{"requestId":"r-1"}')],
  ]

  it('each kind is refused MALFORMED_REQUEST in CBOR, and the bridge keeps serving everyone else', async () => {
    const refusals = KINDS.map(async ([kind], i) => {
      const id = `malformed-${i}`
      await bridge.pki.makeDevice(id)
      const device = await connectDevice(bridge, id, { format: 'cbor' })
      await device.send(KINDS[i]?.[1] as Buffer)
      const reply = await device.nextReply()
      await device.end()
      return [kind, reply] as const
    })
    // meanwhile, and after, others register in either format
    const served = async (id: string, format: 'json' | 'cbor') => {
      await bridge.pki.makeDevice(id)
      const device = await connectDevice(bridge, id, { format })
      await device.send({ requestId: `ok-${id}` })
      const reply = await device.nextReply()
      await device.end()
      return reply.status
    }
    const others = [served('bystander-json', 'json'), served('bystander-cbor', 'cbor')]
    for (const [kind, reply] of await Promise.all(refusals)) {
      expect(reply, kind).toMatchObject({
        version: 1,
        status: 'rejected',
        error: { code: 'MALFORMED_REQUEST' },
      })
    }
    expect(await Promise.all([...others, served('after-cbor', 'cbor')])).toEqual([
      'issued',
      'issued',
      'issued',
    ])
  })

  it('a request larger than limits.maxRequestBytes is REQUEST_TOO_LARGE before it is decoded', async () => {
    await bridge.pki.makeDevice('too-large')
    const device = await connectDevice(bridge, 'too-large', { format: 'cbor' })
    await device.send(Buffer.from(encode({ requestId: 'big', csr: new Uint8Array(20_000) })))
    expect(await device.nextReply()).toMatchObject({ requestId: 'big', error: { code: 'REQUEST_TOO_LARGE' } })
    await device.end()
  })
})

describe('access control of the CBOR topics', () => {
  it('a device may subscribe to its own CBOR reply topic only, and publish to no reply topic', async () => {
    const device = await connectDevice(bridge, 'device-004', { format: 'cbor', subscribe: false })
    const granted = (topic: string) => grantedQos(device.client, topic, 1)
    expect(await granted('registration/device-004/reply/cbor')).toBe(1)
    expect(await granted('registration/device-005/reply/cbor')).toBe(128)
    expect(await granted('registration/+/reply/cbor')).toBe(128)
    expect(await granted('registration/device-004/reply/#')).toBe(128)
    expect(await granted('registration/request/cbor')).toBe(128)
    const closed = new Promise<void>((resolve) => device.client.once('close', () => resolve()))
    device.client.publish('registration/device-004/reply/cbor', Buffer.from(encode({ status: 'issued' })))
    await closed
    await device.end()
  })
})

describe('CBOR with Redis', () => {
  it('a CBOR request never crosses Redis; its reply does, and is kept in Redis for an offline persistent session', async () => {
    const redis = await startRedis()
    const shared = await startTestBridge([`state.redis.url=${redis.url}`])
    const watcher = new Redis(redis.url)
    const channels: string[] = []
    watcher.on('pmessage', (_pattern: string, channel: string) => channels.push(channel))
    await watcher.psubscribe('*')
    try {
      const device = await connectDevice(shared, 'device-005', { format: 'cbor' })
      await device.send({ requestId: 'via-redis' })
      expect(await device.nextReply()).toMatchObject({ status: 'issued', requestId: 'via-redis' })
      await device.end()
      expect(channels).toContain('registration/device-005/reply/cbor')
      expect(channels.filter((c) => c.startsWith('registration/request'))).toEqual([])
      // a persistent session subscribed to the CBOR reply topic, offline while another connection asks (CSR mode:
      // kept in Redis), gets the reply when it comes back
      const keeper = { clientId: 'cbor-keeper', clean: false }
      await (await connectDevice(shared, 'device-004', { format: 'cbor', session: keeper })).end()
      const asker = await connectDevice(shared, 'device-004', { format: 'cbor' })
      const { csr } = await opensslCsr('/CN=device-004')
      await asker.send({
        requestId: 'kept',
        csr: Buffer.from(csr.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64'),
      })
      const heard = await asker.nextReply() // published, so kept for the offline session by now
      expect(heard).toMatchObject({ status: 'issued', requestId: 'kept' })
      await asker.end()
      const back = await connectDevice(shared, 'device-004', {
        format: 'cbor',
        session: keeper,
        subscribe: false,
      })
      expect(await back.nextReply()).toEqual(heard)
      await back.end()
    } finally {
      watcher.disconnect()
      await shared.stop()
      await redis.stop()
    }
  })
})
