import { randomUUID, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls'
import { MqttClient } from 'mqtt'
import { buildCsr } from '../pki/csr-builder.js'
import { generateKey } from '../pki/keys.js'
import { codecOf, type WireFormat } from '../protocol/codec/codecs.js'
import type { IssuedReply, KeyAlgorithm } from '../protocol/messages.js'
import { awaitAnswer } from './answer.js'

export { MalformedReplyError, RegistrationRejectedError } from './answer.js'

/** DeviceTls is the TLS material a device connects with. */
export interface DeviceTls {
  readonly certPem: string
  readonly keyPem: string
  /** PEM of the CA(s) the device trusts for the server it connects to. */
  readonly caPem: string
}

/** RegisterOptions configure one registration. */
export interface RegisterOptions extends DeviceTls {
  /** The bridge, e.g. mqtts://localhost:8883. */
  readonly url: string
  /** Make the key here and send only a CSR (the key never leaves the device). */
  readonly csr?: boolean
  readonly keyAlgorithm?: KeyAlgorithm
  /** Defaults to the CN of the factory certificate. */
  readonly identity?: string
  readonly requestId?: string
  readonly requestTopic?: string
  readonly replyPrefix?: string
  readonly timeoutMs?: number
  readonly onPending?: () => void
  /** The wire format (default JSON): CBOR uses the `/cbor` topics, binary fields as DER (docs/protocol.md, "CBOR"). */
  readonly format?: WireFormat
}

/** wireOf is a client's codec and topics for its format: `<request>/cbor` and `<prefix>/<identity>/reply/cbor` for CBOR. */
export function wireOf(
  options: Pick<RegisterOptions, 'format' | 'requestTopic' | 'replyPrefix'>,
  identity: string,
) {
  const suffix = options.format === 'cbor' ? '/cbor' : ''
  return {
    codec: codecOf(options.format ?? 'json'),
    requestTopic: `${options.requestTopic ?? 'registration/request'}${suffix}`,
    replyTopic: `${options.replyPrefix ?? 'registration'}/${identity}/reply${suffix}`,
  }
}

/**
 * BundleOptions ask for the key in a PKCS#12 bundle protected by `pkcs12Password` (docs/protocol.md, "PKCS#12
 * bundles"): the bridge makes the key (no `csr`), and the result carries `pkcs12` instead of `privateKeyPem`.
 */
export type BundleOptions = Omit<RegisterOptions, 'csr'> & { readonly pkcs12Password: string }

/** Registration is what a successful registration yields; privateKeyPem is always set. */
export interface Registration {
  readonly certificatePem: string
  readonly caCertificatesPem: string
  readonly privateKeyPem: string
  readonly serialNumber: string
  readonly notBefore: string
  readonly notAfter: string
  readonly endpointUrl: string | undefined
}

/** BundledRegistration is a registration whose key came in a PKCS#12 bundle (DER), never as PEM. */
export type BundledRegistration = Omit<Registration, 'privateKeyPem'> & { readonly pkcs12: Buffer }

/**
 * DownstreamCredentials are a sensor's credentials; privateKeyPem is absent when the sensor made its own key or
 * asked for a bundle (`pkcs12`).
 */
export type DownstreamCredentials = Omit<Registration, 'privateKeyPem'> & {
  readonly privateKeyPem?: string
  readonly pkcs12?: Buffer
}

/** commonNameOf reads the subject CN of a certificate. */
export function commonNameOf(certPem: string): string {
  const cn = new X509Certificate(certPem).subject.split('\n').find((line) => line.startsWith('CN='))
  if (!cn) throw new Error('the certificate has no subject CN; pass the identity explicitly')
  return cn.slice(3)
}

/** BundleTls is TLS material from a PKCS#12 bundle: its key and certificates, and the CA(s) to trust. */
export interface BundleTls {
  readonly pkcs12: Buffer
  readonly password: string
  readonly caPem: string
}

const contexts = new WeakMap<DeviceTls | BundleTls, SecureContext>()

/** secureContextFor parses a device's key, certificate and CAs once, however often it connects. */
function secureContextFor(tls: DeviceTls | BundleTls): SecureContext {
  const context =
    contexts.get(tls) ??
    createSecureContext(
      'pkcs12' in tls
        ? { pfx: tls.pkcs12, passphrase: tls.password, ca: tls.caPem }
        : { key: tls.keyPem, cert: tls.certPem, ca: tls.caPem },
    )
  contexts.set(tls, context)
  return context
}

/**
 * connectTls opens an MQTT 3.1.1 connection over mutual TLS. It fails fast, with no reconnect: on a
 * refused CONNECT, a TLS alert, a closed connection or a timeout.
 */
export function connectTls(url: string, tls: DeviceTls | BundleTls, timeoutMs = 10_000): Promise<MqttClient> {
  const { hostname, port } = new URL(url)
  const host = hostname.replace(/^\[(.*)\]$/, '$1')
  // our own stream, so that Nagle's algorithm is off from the first byte: MQTT packets are small
  const secureContext = secureContextFor(tls)
  const streamBuilder = () => {
    const socket = tlsConnect({
      secureContext,
      host,
      port: Number(port || 8883),
      servername: isIP(host) ? '' : host,
    })
    socket.setNoDelay(true)
    return socket
  }
  const client = new MqttClient(streamBuilder, {
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
  })
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      clearTimeout(timer)
      client.removeListener('connect', ok)
      client.end(true)
      reject(err)
    }
    const ok = (): void => {
      clearTimeout(timer)
      client.removeListener('error', fail)
      client.removeListener('close', closed)
      resolve(client)
    }
    const closed = (): void => fail(new Error(`connection to ${url} closed before CONNACK`))
    const timer = setTimeout(
      () => fail(new Error(`no CONNACK from ${url} within ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.once('connect', ok)
    client.once('error', fail)
    client.once('close', closed)
  })
}

/** subscribe subscribes to the reply topic; a refusal (SUBACK 0x80) is a clear error at once. */
export async function subscribe(client: MqttClient, topic: string): Promise<void> {
  const refused = new Error(
    `the bridge refused the subscription to ${topic} (SUBACK 0x80): is this your identity?`,
  )
  const granted = await client.subscribeAsync(topic, { qos: 1 }).catch((err: { packet?: unknown }) => {
    // MQTT.js rejects a SUBACK of failures; any other error is the connection's
    if (err.packet) throw refused
    throw err
  })
  if (!granted[0] || granted[0].qos === 128) throw refused
}

/** credentialsOf reads an issued reply's credentials, with the key made here or else the bridge's (PEM or bundle). */
export function credentialsOf(
  reply: Omit<IssuedReply, 'requestId'>,
  privateKeyPem: string | undefined,
): DownstreamCredentials {
  return {
    certificatePem: reply.certificate,
    caCertificatesPem: reply.caCertificates,
    ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
    ...(reply.pkcs12 === undefined ? {} : { pkcs12: Buffer.from(reply.pkcs12, 'base64') }),
    serialNumber: reply.serialNumber,
    notBefore: reply.notBefore,
    notAfter: reply.notAfter,
    endpointUrl: reply.endpoint?.url,
  }
}

/** register trades a factory certificate for operational credentials over MQTT. */
export function register(options: BundleOptions): Promise<BundledRegistration>
export function register(options: RegisterOptions): Promise<Registration>
export async function register(
  options: RegisterOptions | BundleOptions,
): Promise<Registration | BundledRegistration> {
  const identity = options.identity ?? commonNameOf(options.certPem)
  const requestId = options.requestId ?? randomUUID()
  const pkcs12Password = 'pkcs12Password' in options ? options.pkcs12Password : undefined
  const csr = 'csr' in options && options.csr === true
  if (pkcs12Password !== undefined && csr)
    throw new Error('a PKCS#12 bundle holds a key the bridge makes: not with csr')
  const keys = csr ? await generateKey(options.keyAlgorithm ?? 'ECDSA-P256') : undefined
  const request = keys
    ? { requestId, csr: buildCsr(identity, keys.privateKey, keys.publicKey) }
    : {
        requestId,
        ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
        ...(pkcs12Password === undefined ? {} : { pkcs12: { password: pkcs12Password } }),
      }
  const { codec, requestTopic, replyTopic: topic } = wireOf(options, identity)
  const timeoutMs = options.timeoutMs ?? 60_000
  const client = await connectTls(options.url, options, timeoutMs)
  const answer = awaitAnswer(client, topic, requestId, { timeoutMs, onPending: options.onPending, codec })
  try {
    await subscribe(client, topic)
    await client.publishAsync(requestTopic, codec.encodeRequest(request), { qos: 1 })
    const reply = await answer.promise
    if (pkcs12Password !== undefined) {
      if (reply.pkcs12 === undefined)
        throw new Error('the bridge issued a certificate without a PKCS#12 bundle')
      const { privateKeyPem: _, pkcs12, ...rest } = credentialsOf(reply, undefined)
      return { ...rest, pkcs12: pkcs12 as Buffer }
    }
    const privateKeyPem = keys
      ? keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
      : reply.privateKey
    if (!privateKeyPem) throw new Error('the bridge issued a certificate without a private key')
    return { ...credentialsOf(reply, privateKeyPem), privateKeyPem }
  } finally {
    answer.cancel()
    await client.endAsync(true).catch(() => {})
  }
}

/**
 * renew trades the device's current operational certificate (as `certPem`/`keyPem`) for a new one over the same
 * request topic. By default it makes a new key and sends a CSR (the bridge requires a new key unless
 * lifecycle.renewal.requireNewKey is false); `csr: false` asks the bridge for the key where policy allows.
 */
export function renew(options: BundleOptions): Promise<BundledRegistration>
export function renew(options: RegisterOptions): Promise<Registration>
export function renew(options: RegisterOptions | BundleOptions): Promise<Registration | BundledRegistration> {
  // a bundle holds a key the bridge makes: no CSR then
  if ('pkcs12Password' in options) return register(options)
  return register({ ...options, csr: options.csr ?? true })
}
