import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { Reply } from '../../src/protocol/messages.js'
import type { CliBridge } from './cli-bridge.js'
import { opensslCsr } from './csr.js'
import type { TestPki } from './pki.js'

/** ClusterDevice is a device with its factory credentials and one request it keeps sending until answered. */
export interface ClusterDevice {
  readonly id: string
  readonly tls: { key: string; cert: string; ca: string }
  readonly payload: string
}

/** makeClusterDevices makes `count` devices named `<prefix>-<i>`, each with a CSR (csr) or none (server-key). */
export async function makeClusterDevices(
  pki: TestPki,
  prefix: string,
  count: number,
  mode: 'csr' | 'server-key',
  extra: Record<string, unknown> = {},
): Promise<ClusterDevice[]> {
  const ca = await readFile(pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const id = `${prefix}-${i}`
      const files = await pki.makeDevice(id)
      const tls = {
        key: await readFile(files.keyFile, 'utf8'),
        cert: await readFile(files.certFile, 'utf8'),
        ca,
      }
      const csr = mode === 'csr' ? (await opensslCsr(`/CN=${id}`)).csr : undefined
      return { id, tls, payload: JSON.stringify({ requestId: `r-${id}`, ...(csr ? { csr } : {}), ...extra }) }
    }),
  )
}

let counter = 0

/** Session is one connection of a device: the replies it received (pending notices left out). */
export interface Session {
  readonly client: MqttClient
  readonly clientId: string
  readonly replies: Reply[]
  /** next resolves with the next reply, or undefined when none comes within `ms` or the connection closes. */
  next(ms: number): Promise<Reply | undefined>
  /** pending resolves on the first `pending` notice. */
  readonly pending: Promise<void>
}

/** openSession connects (any worker: node:cluster picks), subscribes to the reply topic and sends the request. */
export async function openSession(bridge: CliBridge, device: ClusterDevice, send = true): Promise<Session> {
  const clientId = `c${process.pid}-${counter++}`
  const client = mqtt.connect(bridge.url, {
    ...device.tls,
    clientId,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    rejectUnauthorized: false,
  })
  client.on('error', () => {})
  // connected, or failed: an error, a close (a worker killed mid-handshake), or no CONNACK within MQTT.js's
  // connectTimeout (which closes the client: reconnectPeriod 0)
  await new Promise<void>((resolve, reject) => {
    const fail = (): void => {
      client.end(true)
      reject(new Error('not connected'))
    }
    client.once('connect', () => {
      client.off('close', fail)
      resolve()
    })
    client.once('close', fail)
  })
  const replies: Reply[] = []
  const waiters = new Set<() => void>()
  let onPending: () => void = () => {}
  const pending = new Promise<void>((resolve) => {
    onPending = resolve
  })
  client.on('message', (_topic, payload) => {
    const reply = JSON.parse(payload.toString('utf8')) as Reply
    if (reply.status === 'pending') onPending()
    else replies.push(reply)
    for (const w of waiters) w()
  })
  client.on('close', () => {
    for (const w of waiters) w()
  })
  // MQTT.js keeps a QoS 1 publish for a reconnect that never comes: a closed connection fails the step
  const closed = new Promise<never>((_, reject) => {
    if (!client.connected) reject(new Error('connection closed'))
    client.once('close', () => reject(new Error('connection closed')))
  })
  closed.catch(() => {})
  try {
    await Promise.race([client.subscribeAsync(`registration/${device.id}/reply`, { qos: 1 }), closed])
    if (send)
      await Promise.race([client.publishAsync('registration/request', device.payload, { qos: 1 }), closed])
  } catch (err) {
    client.end(true)
    throw err
  }
  let read = 0
  const next = (ms: number): Promise<Reply | undefined> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (read < replies.length) done(replies[read++])
        else if (client.disconnected || !client.connected) done(undefined)
      }
      const done = (r: Reply | undefined): void => {
        clearTimeout(timer)
        waiters.delete(check)
        resolve(r)
      }
      const timer = setTimeout(() => done(undefined), ms)
      waiters.add(check)
      check()
    })
  return { client, clientId, replies, next, pending }
}

/**
 * registerWithRetries sends the device's request until it is issued: a connection that closes, no answer
 * within `answerMs`, or a retryable rejection means a new connection and the same request again.
 * It returns every final reply the device saw, in order (the last is the issued one).
 */
export async function registerWithRetries(
  bridge: CliBridge,
  device: ClusterDevice,
  answerMs: number,
  deadline = Date.now() + 60_000,
): Promise<Reply[]> {
  const seen: Reply[] = []
  while (Date.now() < deadline) {
    const session = await openSession(bridge, device).catch(() => undefined)
    if (!session) {
      await new Promise((r) => setTimeout(r, 50))
      continue
    }
    const reply = await session.next(answerMs)
    await session.client.endAsync(true).catch(() => {})
    if (reply) seen.push(reply)
    if (reply?.status === 'issued') return seen
    if (reply?.status === 'rejected' && !reply.error.retryable) return seen
    await new Promise((r) => setTimeout(r, 50))
  }
  return seen
}

/** workerOf reads which worker served a client id, from the bridge's debug log line `client connected`. */
export async function workerOf(bridge: CliBridge, clientId: string): Promise<number> {
  const pattern = new RegExp(
    `"worker":(\\d+)[^\\n]*"clientId":"[^"]*:${clientId}"[^\\n]*"msg":"client connected"`,
  )
  await bridge.process.waitFor(pattern)
  return Number(pattern.exec(bridge.process.output())?.[1])
}

/** AuditEntry is one line of the audit log. */
export interface AuditEntry {
  time: string
  identity: string
  serialNumber: string
  requestId?: string
  supersedes?: string
}

/** auditByIdentity reads the audit log (shared by every worker) and groups it by identity. */
export async function auditByIdentity(stateDir: string): Promise<Map<string, AuditEntry[]>> {
  const text = await readFile(join(stateDir, 'audit.log'), 'utf8').catch(() => '')
  const byIdentity = new Map<string, AuditEntry[]>()
  for (const line of text.trim().split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as AuditEntry
    byIdentity.set(r.identity, [...(byIdentity.get(r.identity) ?? []), r])
  }
  return byIdentity
}

/** childPids lists the processes a process started (the workers of a node:cluster primary), from /proc. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')
  return text.trim().split(/\s+/).filter(Boolean).map(Number)
}

/** checkAnswers asserts what every device got: exactly one issued answer, for its own request, in the audit log. */
export async function issuedOnce(
  stateDir: string,
  devices: readonly ClusterDevice[],
  results: readonly Reply[][],
): Promise<{ problems: string[]; linked: number }> {
  const audit = await auditByIdentity(stateDir)
  const problems: string[] = []
  let linked = 0
  devices.forEach((d, i) => {
    const seen = results[i] ?? []
    const issued = seen.filter((r) => r.status === 'issued')
    const wrong = seen.filter((r) => r.status === 'rejected' && !r.error.retryable)
    if (issued.length !== 1) problems.push(`${d.id}: ${issued.length} issued answers`)
    if (wrong.length > 0) problems.push(`${d.id}: a final rejection ${JSON.stringify(wrong[0])}`)
    const answer = issued[0]
    if (answer?.status !== 'issued') return
    if (answer.requestId !== `r-${d.id}`) problems.push(`${d.id}: the answer to ${answer.requestId}`)
    // the workers share one audit log: a line a killed worker's replacement writes at start can follow later
    // lines of the other worker, so an identity's records are read in the order they were issued
    const records = [...(audit.get(d.id) ?? [])].sort((a, b) => a.time.localeCompare(b.time))
    if (records.at(-1)?.serialNumber !== answer.serialNumber)
      problems.push(
        `${d.id}: answered ${answer.serialNumber}, audit has ${records.map((r) => r.serialNumber)}`,
      )
    if (records.length > 1) {
      linked++
      for (let k = 1; k < records.length; k++)
        if (records[k]?.supersedes !== records[k - 1]?.serialNumber)
          problems.push(`${d.id}: certificate ${k + 1} is not linked to the one before`)
    }
  })
  return { problems, linked }
}

/** Occurrences is a pattern for Running.waitFor that matches once `text` appears `count` times in the output. */
export class Occurrences extends RegExp {
  readonly #count: number
  readonly #text: string

  constructor(text: string, count: number) {
    super(text)
    this.#text = text
    this.#count = count
  }

  override test(output: string): boolean {
    return output.split(this.#text).length - 1 >= this.#count
  }
}
