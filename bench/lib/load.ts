import { randomUUID } from 'node:crypto'
import { decode, encode } from 'cborg'
import type { MqttClient } from 'mqtt'
import { connectTls, type DeviceTls } from '../../src/client/register.js'
import type { Reply } from '../../src/protocol/messages.js'
import { provisionOnce } from './aws-load.js'
import type { Target } from './servers.js'

/** Device is one identity the load generator registers as. */
export interface Device {
  readonly id: string
  readonly tls: DeviceTls
  /** A CSR for CSR mode, made before the clock starts (PEM), and its DER for CBOR. */
  readonly csr?: string
  readonly csrDer?: Buffer
}

/**
 * LoadMode is how a device asks: the bridge makes its key, or it sends a CSR in JSON or in CBOR (DER bytes), or it
 * runs the AWS fleet-provisioning CSR flow (CreateCertificateFromCsr, then RegisterThing: the bridge only).
 */
export type LoadMode = 'server-key' | 'csr' | 'csr-cbor' | 'aws-csr'

/** Outcome of one registration: its latency (connect to answer, and publish to answer) and final status. */
export interface Outcome {
  readonly ms: number
  readonly replyMs: number
  readonly status: string
}

function waitForFinal(client: MqttClient, topic: string, requestId: string, cbor = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    client.on('message', (t, payload) => {
      if (t !== topic) return
      const reply = (cbor ? decode(payload) : JSON.parse(String(payload))) as Reply
      if (reply.status !== 'pending' && (reply.requestId === requestId || reply.requestId === undefined))
        resolve(reply)
    })
    client.once('close', () => reject(new Error('closed before the answer')))
  })
}

/**
 * registerOnce is one device's whole registration as a fresh device does it: a new mutual-TLS connection,
 * subscribe, publish, wait for the final answer, disconnect. The same code drives every target.
 */
export async function registerOnce(target: Target, device: Device, mode: LoadMode): Promise<Outcome> {
  if (mode === 'aws-csr') return provisionOnce(target, device)
  const started = performance.now()
  const requestId = randomUUID()
  const client = await connectTls(target.url, device.tls)
  try {
    // CBOR: the topics with a /cbor level (the bridge only), the CSR as DER bytes
    const cbor = mode === 'csr-cbor'
    const suffix = cbor ? '/cbor' : ''
    const topic = `registration/${device.id}/reply${suffix}`
    const answer = waitForFinal(client, topic, requestId, cbor)
    await client.subscribeAsync(topic, { qos: 1 })
    const body = mode === 'csr' ? { requestId, csr: device.csr } : { requestId }
    const payload = cbor
      ? Buffer.from(encode({ requestId, csr: device.csrDer }))
      : target.request(device.id, body)
    const published = performance.now()
    await client.publishAsync(`registration/request${suffix}`, payload, { qos: 1 })
    const reply = await answer
    const now = performance.now()
    return { ms: now - started, replyMs: now - published, status: reply.status }
  } finally {
    client.end(true)
  }
}

/** OpenDevice is a device that has connected and subscribed, ready to publish its request. */
export interface OpenDevice {
  register(): Promise<Outcome>
  end(): void
}

/** openDevice connects and subscribes now, so that registrations can later start all at once. */
export async function openDevice(target: Target, device: Device): Promise<OpenDevice> {
  const started = performance.now()
  const client = await connectTls(target.url, device.tls)
  const topic = `registration/${device.id}/reply`
  await client.subscribeAsync(topic, { qos: 1 })
  return {
    async register() {
      const requestId = randomUUID()
      const answer = waitForFinal(client, topic, requestId)
      const published = performance.now()
      await client.publishAsync('registration/request', target.request(device.id, { requestId }), { qos: 1 })
      const reply = await answer
      const now = performance.now()
      return { ms: now - started, replyMs: now - published, status: reply.status }
    },
    end: () => client.end(true),
  }
}

/** ClosedLoopResult is what a fixed-concurrency run measured. */
export interface LoadResult {
  readonly latencies: number[]
  readonly seconds: number
  readonly failures: number
  readonly statuses: Record<string, number>
}

/** closedLoop keeps `concurrency` registrations in flight for `durationMs`; worker i is device i. */
export async function closedLoop(
  target: Target,
  devices: readonly Device[],
  concurrency: number,
  durationMs: number,
  mode: LoadMode,
): Promise<LoadResult> {
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let failures = 0
  const started = performance.now()
  const deadline = started + durationMs
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const device = devices[worker % devices.length] as Device
      while (performance.now() < deadline) {
        try {
          const outcome = await registerOnce(target, device, mode)
          latencies.push(outcome.ms)
          statuses[outcome.status] = (statuses[outcome.status] ?? 0) + 1
        } catch {
          failures++
        }
      }
    }),
  )
  return { latencies, seconds: (performance.now() - started) / 1000, failures, statuses }
}
