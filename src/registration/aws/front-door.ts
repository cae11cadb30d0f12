import type { Logger } from 'pino'
import type { DirectReply } from '../../protocol/aws/direct-reply.js'
import {
  AwsError,
  type CreateAccepted,
  createRequestOf,
  csrRequestOf,
  decodeAwsBody,
  encodeAws,
  rejectedBody,
  toAwsError,
} from '../../protocol/aws/messages.js'
import { type AwsRequestTopic, awsReplyTopic } from '../../protocol/aws/topics.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { DeviceIdentity } from '../../protocol/identity.js'
import type { IssuedReply } from '../../protocol/messages.js'
import type { Registry } from '../../registry/registry.js'
import { fingerprintOf } from '../replies.js'
import type { RegistrationService } from '../service.js'
import { newOwnershipToken } from './ownership-token.js'

/** AwsFrontDoorDeps are what the AWS topics are answered with: the one pipeline, the registry, and RegisterThing. */
export interface AwsFrontDoorDeps {
  readonly service: Pick<RegistrationService, 'provision'>
  readonly registry: Registry
  readonly logger: Logger
  readonly requestMaxBytes: number
  readonly tokenLifetimeSeconds: number
  /** RegisterThing (register-thing.ts): the accepted body, or it throws the refusal. */
  readonly registerThing: (
    identity: DeviceIdentity,
    topic: AwsRequestTopic,
    body: Record<string, unknown>,
  ) => Promise<Record<string, unknown>>
  /**
   * Told when a certificate became pending; resolves once the CRL holds it (embedded CA), so that no device ever
   * holds a pending certificate the CRL does not.
   */
  readonly pendingChanged: () => Promise<void>
}

/**
 * awsFrontDoor answers the AWS fleet-provisioning topics (docs/aws-fleet-provisioning.md): a codec and topic mapping
 * in front of the registration pipeline, not a second one. A create call is a device's own request on the AWS path
 * (its certificate pending until RegisterThing); its answer, accepted or rejected in AWS's shape, is written to the
 * asking connection only, if it subscribed to that reply topic.
 */
export function awsFrontDoor(deps: AwsFrontDoorDeps) {
  const pending = new Set<Promise<void>>()

  async function answer(
    identity: DeviceIdentity,
    topic: AwsRequestTopic,
    payload: Buffer,
  ): Promise<Record<string, unknown>> {
    if (topic.operation === 'RegisterThing')
      return deps.registerThing(identity, topic, decodeAwsBody(payload, topic.format, deps.requestMaxBytes))
    if (identity.credential?.kind === 'operational')
      throw new AwsError(
        403,
        'AccessDenied',
        'fleet provisioning is for claim (factory) certificates; renew with protocol v1',
      )
    const read = topic.operation === 'CreateKeysAndCertificate' ? createRequestOf : csrRequestOf
    const result = await deps.service.provision(
      identity.id,
      () => read(decodeAwsBody(payload, topic.format, deps.requestMaxBytes)),
      identity.credential,
    )
    if (result === undefined) throw silent
    if ('error' in result) throw result.error
    return accepted(result.reply)
  }

  /** accepted gives the pending certificate a fresh ownership token (a replay too: the old one stops working). */
  async function accepted(reply: IssuedReply): Promise<Record<string, unknown>> {
    const { token, sha256 } = newOwnershipToken()
    const now = new Date()
    const expiresAt = new Date(now.getTime() + deps.tokenLifetimeSeconds * 1000)
    if (!(await deps.registry.setOwnershipToken(reply.serialNumber, sha256, expiresAt, now))) {
      // a replay of a certificate no longer pending, or whose token expired (never revived: it is revoked now)
      await deps.pendingChanged()
      throw new RegistrationError('REGISTRATION_IN_PROGRESS', 'the certificate is no longer pending; retry')
    }
    await deps.pendingChanged()
    const body: CreateAccepted = {
      certificateId: fingerprintOf(reply.certificate),
      certificatePem: reply.certificate,
      ...(reply.privateKey === undefined ? {} : { privateKey: reply.privateKey }),
      certificateOwnershipToken: token,
    }
    return { ...body }
  }

  async function respond(
    identity: DeviceIdentity,
    topic: AwsRequestTopic,
    payload: Buffer,
    reply: DirectReply,
  ) {
    let outcome: 'accepted' | 'rejected' = 'accepted'
    let body: Record<string, unknown>
    try {
      body = await answer(identity, topic, payload)
    } catch (err) {
      if (err === silent) return // the same request in flight elsewhere: its holder answers
      outcome = 'rejected'
      const refusal = toAwsError(err)
      if (refusal.errorCode === 'InternalFailure')
        deps.logger.error({ identity: identity.id, err }, 'AWS fleet-provisioning request failed')
      body = rejectedBody(refusal)
    }
    const to = awsReplyTopic(topic, outcome)
    if (!(await reply.send(to, encodeAws(body, topic.format))))
      deps.logger.debug({ identity: identity.id, topic: to }, 'answer not sent: not subscribed, or gone')
  }

  return {
    /** handle answers one request of the AWS topics; it never throws. */
    handle(identity: DeviceIdentity, topic: AwsRequestTopic, payload: Buffer, reply: DirectReply): void {
      const delivery = respond(identity, topic, payload, reply)
        .catch((err: unknown) =>
          deps.logger.warn({ identity: identity.id, err }, 'AWS answer could not be sent'),
        )
        .finally(() => pending.delete(delivery))
      pending.add(delivery)
    },
    /** settled waits for the answers under way. */
    settled: () => Promise.allSettled([...pending]),
  }
}

/** silent ends a request another process (or request) answers. */
const silent = Symbol('silent')
