import type { MqttClient } from 'mqtt'
import { type Codec, codecOf } from '../protocol/codec/codecs.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { IssuedReply, Reply } from '../protocol/messages.js'

/** RegistrationRejectedError is a `rejected` reply from the bridge, with its wire code. */
export class RegistrationRejectedError extends Error {
  override readonly name = 'RegistrationRejectedError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterSeconds: number | undefined,
    /** Why policy refused a gateway's device (e.g. DEVICE_NOT_ALLOWED). */
    readonly reason?: string | undefined,
  ) {
    super(`${code}: ${message}`)
  }
}

/** MalformedReplyError is a message on the reply topic that is not a reply of the documented shape. */
export class MalformedReplyError extends Error {
  override readonly name = 'MalformedReplyError'
}

const isString = (v: unknown): v is string => typeof v === 'string'

/** parseReply reads a reply (JSON, or CBOR read back into JSON's shape), or throws MalformedReplyError naming what is wrong with it. */
export function parseReply(payload: Buffer, codec: Codec = codecOf('json')): Reply {
  const format = codec.format.toUpperCase()
  let body: unknown
  try {
    body = codec.decodeReply(payload)
  } catch {
    throw new MalformedReplyError(`the bridge sent a reply that is not ${format}`)
  }
  const r = body as Record<string, unknown> | null
  if (typeof r !== 'object' || r === null || Array.isArray(r)) {
    throw new MalformedReplyError(`the bridge sent a reply that is not a ${format} object`)
  }
  const e = r.error as Record<string, unknown> | undefined
  const ok =
    (r.status === 'pending' && (r.requestId === undefined || isString(r.requestId))) ||
    (r.status === 'issued' &&
      [r.certificate, r.caCertificates, r.serialNumber, r.notBefore, r.notAfter].every(isString) &&
      (r.privateKey === undefined || isString(r.privateKey)) &&
      (r.pkcs12 === undefined || isString(r.pkcs12))) ||
    (r.status === 'rejected' &&
      typeof e === 'object' &&
      e !== null &&
      isString(e.code) &&
      isString(e.message))
  if (!ok) throw new MalformedReplyError(`the bridge sent a malformed "${String(r.status)}" reply`)
  return r as unknown as Reply
}

/** Answer is the awaited answer to one request, and how to stop waiting for it. */
export interface Answer {
  readonly promise: Promise<IssuedReply>
  /** cancel stops waiting: the timer and every listener are removed (safe to call at any time). */
  cancel(): void
}

/**
 * awaitAnswer waits for the final reply to `requestId` on `topic`: it settles at once on a rejection, a
 * malformed reply, a connection error or close, or after `timeoutMs`; it never leaves a timer or listener.
 */
export function awaitAnswer(
  client: MqttClient,
  topic: string,
  requestId: string,
  options: { timeoutMs: number; onPending?: (() => void) | undefined; codec?: Codec },
): Answer {
  let settle: (err: Error | undefined, reply?: IssuedReply) => void = () => {}
  const promise = new Promise<IssuedReply>((resolve, reject) => {
    const onError = (err: Error): void => settle(err)
    const onClose = (): void => settle(new Error('connection to the bridge closed before an answer'))
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return
      let reply: Reply
      try {
        reply = parseReply(payload, options.codec)
      } catch (err) {
        settle(err as Error)
        return
      }
      if (reply.requestId !== requestId) return
      if (reply.status === 'pending') options.onPending?.()
      else if (reply.status === 'issued') settle(undefined, reply)
      else {
        const e = reply.error
        settle(new RegistrationRejectedError(e.code, e.message, e.retryable === true, e.retryAfterSeconds))
      }
    }
    const timer = setTimeout(
      () => settle(new Error(`no answer from the bridge within ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    )
    settle = (err, reply) => {
      settle = () => {}
      clearTimeout(timer)
      client.off('error', onError)
      client.off('close', onClose)
      client.off('message', onMessage)
      if (err) reject(err)
      else if (reply) resolve(reply)
    }
    client.on('error', onError)
    client.on('close', onClose)
    client.on('message', onMessage)
  })
  // a caller that fails before awaiting it must not leave an unhandled rejection behind
  promise.catch(() => {})
  return { promise, cancel: () => settle(new Error('cancelled')) }
}
