import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import {
  CREDENTIAL_FILES,
  commonNameOf,
  type DownstreamDevice,
  register,
  registerDevices,
  renew,
  verifyCredentials,
  writeCredentials,
} from '../client/index.js'
import { DEV_PKI_FILES } from '../pki/dev-pki.js'
import { WIRE_FORMATS, type WireFormat } from '../protocol/codec/codecs.js'
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../protocol/messages.js'
import { isSafeIdentity } from '../protocol/topics.js'
import { PKCS12_PASSWORD_ENV, pkcs12Password } from './pkcs12-password.js'
import {
  brokerUrl,
  type Flags,
  identity,
  oneOf,
  positiveInteger,
  positiveNumber,
  requestId,
  UsageError,
} from './usage-error.js'

export const REGISTER_HELP = `Usage: registration-bridge register [options]

The reference device client: connects with a factory certificate, registers, and writes
${CREDENTIAL_FILES.certificate}, ${CREDENTIAL_FILES.privateKey} (${CREDENTIAL_FILES.pkcs12} with --pkcs12) and ${CREDENTIAL_FILES.ca} to the output directory.

Options:
  --url URL              the bridge (default mqtts://localhost:8883)
  --device ID            use the development PKI's factory certificate for ID (e.g. device-001)
  --cert FILE --key FILE factory certificate and key (instead of --device)
  --ca FILE              CA that signed the bridge's server certificate (default: development issuing CA)
  --state-dir DIR        where the development PKI lives (default ./.registration-bridge)
  --csr                  make the key here and send only a CSR
  --key-algorithm ALG    ${KEY_ALGORITHMS.join(' | ')}
  --request-id ID        idempotency key (default: a random UUID)
  --out DIR              where to write credentials (default ./credentials/<identity>)
  --verify URL           then connect to this production broker with the new credentials
  --timeout SECONDS      give up after this long (default 60)
  --format FORMAT        json (default) | cbor: the wire format, and its topics (docs/protocol.md, "CBOR")
  --renew                renew: --cert/--key are the operational certificate and key of an earlier
                         registration; a new key is made here (CSR) unless --server-key;
                         the new files replace the old ones (default --out: the directory of --cert)
  --server-key           with --renew: ask the bridge for the new key instead (if lifecycle allows)
  --pkcs12               get the bridge's key in a PKCS#12 bundle: writes ${CREDENTIAL_FILES.pkcs12} (no ${CREDENTIAL_FILES.privateKey});
                         not with --csr. The password: the first line of --pkcs12-password-file FILE,
                         or $${PKCS12_PASSWORD_ENV} (8-128 characters, no control characters)

Gateway mode (the gateway registers its downstream devices over its own connection):
  --gateway ID           the gateway: the development PKI's factory certificate for ID, or --cert/--key
  --device ID            a downstream device (repeatable); --csr makes its key here, else the bridge does
  --devices FILE         downstream devices, one per line: "ID", or "ID CSR-FILE" for the sensor's own CSR
  --pkcs12               each device without a CSR gets its key in a PKCS#12 bundle (one password for all)
  --batch-size N         devices per batch message (default 100)
  --format FORMAT        json (default) | cbor
  --request-id ID        prefix of the batches' requestIds (<ID>-1, <ID>-2, …): the same prefix retries them
  --out DIR              one credentials folder per device under DIR (default ./credentials)
  Every device id is checked first: one that is not a valid identity is a usage error and nothing is sent.
  Issued devices and the summary go to stdout, each rejected device (with its wire code) to stderr.

Exit status: 0 issued; 1 rejected (the wire code on stderr), malformed reply, refused connection or
subscription, or timeout; 2 a usage error (a flag, device id or request id that cannot be used), before
anything is read or sent.`

export const REGISTER_OPTIONS = {
  url: { type: 'string' },
  device: { type: 'string', multiple: true },
  gateway: { type: 'string' },
  devices: { type: 'string' },
  'batch-size': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  'state-dir': { type: 'string' },
  csr: { type: 'boolean' },
  'key-algorithm': { type: 'string' },
  'request-id': { type: 'string' },
  out: { type: 'string' },
  verify: { type: 'string' },
  timeout: { type: 'string' },
  format: { type: 'string' },
  renew: { type: 'boolean' },
  'server-key': { type: 'boolean' },
  pkcs12: { type: 'boolean' },
  'pkcs12-password-file': { type: 'string' },
} as const

type RegisterFlags = Flags<typeof REGISTER_OPTIONS>

function parseFormat(value: string | undefined): { format: WireFormat } | Record<string, never> {
  return value === undefined ? {} : { format: oneOf('format', value, WIRE_FORMATS) }
}

function parseKeyAlgorithm(value: string | undefined): KeyAlgorithm | undefined {
  return value === undefined ? undefined : oneOf('key-algorithm', value, KEY_ALGORITHMS)
}

/** registerCommand runs one registration and writes the credentials. */
export async function registerCommand(flags: RegisterFlags): Promise<void> {
  const pki = join(resolve(flags['state-dir'] ?? '.registration-bridge'), 'pki')
  if (flags.gateway !== undefined) return registerGatewayCommand(flags, pki)
  if ((flags.device?.length ?? 0) > 1) throw new UsageError('--device names one device (or use --gateway)')
  // every flag is checked before a file is read or anything is sent
  const device = flags.device?.[0] === undefined ? undefined : identity('--device', flags.device[0])
  const certFile = flags.cert ?? (device && join(pki, DEV_PKI_FILES.devicesDir, `${device}.crt`))
  const keyFile = flags.key ?? (device && join(pki, DEV_PKI_FILES.devicesDir, `${device}.key`))
  if (!certFile || !keyFile) throw new UsageError('give --device ID, or --cert FILE and --key FILE')
  const keyAlgorithm = parseKeyAlgorithm(flags['key-algorithm'])
  const format = parseFormat(flags.format)
  const timeoutSeconds = positiveNumber('timeout', flags.timeout, 60)
  const id = requestId(flags['request-id'])
  const url = brokerUrl('url', flags.url) ?? 'mqtts://localhost:8883'
  const verifyUrl = brokerUrl('verify', flags.verify)
  if (flags.renew && (flags.cert === undefined || flags.key === undefined)) {
    throw new UsageError('--renew needs --cert FILE and --key FILE: the operational certificate and key')
  }
  const password = await bundlePassword(flags)
  const options = {
    url,
    certPem: await readFile(certFile, 'utf8'),
    keyPem: await readFile(keyFile, 'utf8'),
    caPem: await readFile(flags.ca ?? join(pki, DEV_PKI_FILES.issuingCaCert), 'utf8'),
    ...(keyAlgorithm ? { keyAlgorithm } : {}),
    ...(id ? { requestId: id } : {}),
    ...format,
    timeoutMs: timeoutSeconds * 1000,
    onPending: () => process.stderr.write('issuance pending…\n'),
  }
  const ask = flags.renew ? renew : register
  const registration =
    password === undefined
      ? await ask({ ...options, csr: flags.renew ? flags['server-key'] !== true : flags.csr === true })
      : await ask({ ...options, pkcs12Password: password })
  const out = resolve(
    flags.out ??
      (flags.renew ? dirname(certFile) : join('credentials', commonNameOf(registration.certificatePem))),
  )
  const written = await writeCredentials(out, registration)
  process.stdout.write(
    `Issued certificate ${registration.serialNumber}, valid until ${registration.notAfter}\n`,
  )
  process.stdout.write(`Wrote ${written.join(', ')} to ${out}\n`)
  if (verifyUrl) {
    await verifyCredentials(verifyUrl, registration, password)
    process.stdout.write(`Connected to ${verifyUrl} with the new credentials\n`)
  }
}

/** bundlePassword is the password of --pkcs12 (checked, never shown), or undefined without the flag. */
async function bundlePassword(flags: RegisterFlags): Promise<string | undefined> {
  if (!flags.pkcs12) {
    if (flags['pkcs12-password-file'] !== undefined)
      throw new UsageError('--pkcs12-password-file goes with --pkcs12')
    return undefined
  }
  if (flags.csr) throw new UsageError('--pkcs12 bundles a key the bridge makes: not with --csr')
  return pkcs12Password(flags['pkcs12-password-file'], process.env)
}

/** registerGatewayCommand registers a gateway's devices in batches and writes one credentials folder per device. */
async function registerGatewayCommand(flags: RegisterFlags, pki: string): Promise<void> {
  // every flag (and every --device id) is checked before a file is read or anything is sent
  const gateway = identity('--gateway', flags.gateway ?? '')
  const deviceIds = (flags.device ?? []).map((d) => identity('--device', d))
  const batchSize = positiveInteger('batch-size', flags['batch-size'])
  const timeoutSeconds = positiveNumber('timeout', flags.timeout, 60)
  const keyAlgorithm = parseKeyAlgorithm(flags['key-algorithm'])
  const format = parseFormat(flags.format)
  requestId(flags['request-id']) // and with room for the batch number, once the devices are known
  const url = brokerUrl('url', flags.url) ?? 'mqtts://localhost:8883'
  const password = await bundlePassword(flags)
  const keyed = (deviceId: string): DownstreamDevice => ({
    deviceId,
    ...(flags.csr ? { generateKey: true } : {}),
    ...(keyAlgorithm ? { keyAlgorithm } : {}),
    ...(password === undefined ? {} : { pkcs12Password: password }),
  })
  const devices = [
    ...deviceIds.map(keyed),
    ...(flags.devices === undefined ? [] : await readDevicesFile(resolve(flags.devices), keyed)),
  ]
  if (devices.length === 0)
    throw new UsageError('name the downstream devices: --device ID (repeatable) or --devices FILE')
  // the batches' requestIds are `<request-id>-<n>`: each must stay within the protocol's 128 characters
  const batches = Math.ceil(devices.length / (batchSize ?? 100))
  requestId(flags['request-id'], 1 + String(batches).length)
  const outcomes = await registerDevices({
    url,
    certPem: await readFile(flags.cert ?? join(pki, DEV_PKI_FILES.devicesDir, `${gateway}.crt`), 'utf8'),
    keyPem: await readFile(flags.key ?? join(pki, DEV_PKI_FILES.devicesDir, `${gateway}.key`), 'utf8'),
    caPem: await readFile(flags.ca ?? join(pki, DEV_PKI_FILES.issuingCaCert), 'utf8'),
    identity: gateway,
    devices,
    ...format,
    timeoutMs: timeoutSeconds * 1000,
    ...(flags['request-id'] ? { requestId: flags['request-id'] } : {}),
    ...(batchSize ? { batchSize } : {}),
  })
  const root = resolve(flags.out ?? 'credentials')
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
    await writeCredentials(dir, c)
    process.stdout.write(
      `${outcome.deviceId}: issued ${c.serialNumber}, valid until ${c.notAfter} → ${dir}\n`,
    )
  }
  process.stdout.write(`${outcomes.length - rejected} issued, ${rejected} rejected\n`)
  if (rejected > 0) process.exitCode = 1
}

/** readDevicesFile reads `--devices FILE`: lines of `ID` or `ID CSR-FILE` (the sensor's own CSR), `#` comments. */
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
