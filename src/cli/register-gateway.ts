import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { CREDENTIAL_FILES, writeCredentials } from '../client/credentials.js'
import { type DownstreamDevice, registerDevices } from '../client/register-devices.js'
import type { KeyAlgorithm } from '../protocol/messages.js'
import { isSafeIdentity } from '../protocol/topics.js'
import { requestId, UsageError } from './usage-error.js'

/** GatewayRegistration is what `register --gateway` needs, parsed by `register`. */
export interface GatewayRegistration {
  readonly url: string
  /** The gateway's certificate, key and the bridge's CA: read once the devices and flags are checked. */
  readonly certFile: string
  readonly keyFile: string
  readonly caFile: string
  readonly gateway: string
  /** `--device ID` values. */
  readonly deviceIds: readonly string[]
  /** `--devices FILE`: lines of `ID` or `ID CSR-FILE` (the sensor's own CSR), `#` comments. */
  readonly devicesFile: string | undefined
  readonly csr: boolean
  readonly keyAlgorithm: KeyAlgorithm | undefined
  readonly requestId: string | undefined
  readonly batchSize: number | undefined
  readonly out: string | undefined
  readonly timeoutMs: number
}

async function readDevicesFile(
  file: string,
  keyed: (id: string) => DownstreamDevice,
): Promise<DownstreamDevice[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.replace(/#.*/, '').trim())
  const devices: DownstreamDevice[] = []
  for (const line of lines.filter(Boolean)) {
    const [id = '', csrFile, ...extra] = line.split(/\s+/)
    if (!isSafeIdentity(id) || extra.length > 0)
      throw new UsageError(`--devices ${file}: expected "ID" or "ID CSR-FILE", got "${line}"`)
    devices.push(
      csrFile ? { deviceId: id, csr: await readFile(resolve(file, '..', csrFile), 'utf8') } : keyed(id),
    )
  }
  return devices
}

/** registerGateway registers a gateway's devices in batches and writes one credentials folder per device. */
export async function registerGateway(o: GatewayRegistration): Promise<void> {
  const keyed = (deviceId: string): DownstreamDevice => ({
    deviceId,
    ...(o.csr ? { generateKey: true } : {}),
    ...(o.keyAlgorithm ? { keyAlgorithm: o.keyAlgorithm } : {}),
  })
  const devices = [
    ...o.deviceIds.map(keyed),
    ...(o.devicesFile ? await readDevicesFile(o.devicesFile, keyed) : []),
  ]
  if (devices.length === 0)
    throw new UsageError('name the downstream devices: --device ID (repeatable) or --devices FILE')
  // the batches' requestIds are `<request-id>-<n>`: each must stay within the protocol's 128 characters
  const batches = Math.ceil(devices.length / (o.batchSize ?? 100))
  requestId(o.requestId, 1 + String(batches).length)
  const outcomes = await registerDevices({
    url: o.url,
    certPem: await readFile(o.certFile, 'utf8'),
    keyPem: await readFile(o.keyFile, 'utf8'),
    caPem: await readFile(o.caFile, 'utf8'),
    identity: o.gateway,
    devices,
    timeoutMs: o.timeoutMs,
    ...(o.requestId ? { requestId: o.requestId } : {}),
    ...(o.batchSize ? { batchSize: o.batchSize } : {}),
  })
  const root = resolve(o.out ?? 'credentials')
  let rejected = 0
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') {
      rejected++
      const reason = outcome.error.reason ? ` (${outcome.error.reason})` : ''
      process.stderr.write(`${outcome.deviceId}: rejected ${outcome.error.message}${reason}\n`)
      continue
    }
    const dir = join(root, outcome.deviceId)
    const c = outcome.credentials
    if (c.privateKeyPem !== undefined) await writeCredentials(dir, { ...c, privateKeyPem: c.privateKeyPem })
    else {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await writeFile(join(dir, CREDENTIAL_FILES.certificate), c.certificatePem)
      await writeFile(join(dir, CREDENTIAL_FILES.ca), c.caCertificatesPem)
    }
    process.stdout.write(
      `${outcome.deviceId}: issued ${c.serialNumber}, valid until ${c.notAfter} → ${dir}\n`,
    )
  }
  process.stdout.write(`${outcomes.length - rejected} issued, ${rejected} rejected\n`)
  if (rejected > 0) process.exitCode = 1
}
