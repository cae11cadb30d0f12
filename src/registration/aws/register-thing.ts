import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import {
  AwsError,
  invalidToken,
  type RegisterThingAccepted,
  registerThingRequestOf,
} from '../../protocol/aws/messages.js'
import { type AwsRequestTopic, TEMPLATE_NAME } from '../../protocol/aws/topics.js'
import type { DeviceIdentity } from '../../protocol/identity.js'
import type { IssuanceRecord, Provisioning, Registry } from '../../registry/registry.js'
import type { AuditTrail } from '../audit-trail.js'
import { denialOf, type LifecycleOptions } from '../lifecycle-policy.js'
import { tokenSha256 } from './ownership-token.js'
import { fill, mayUse, type Templates } from './templates.js'

/** RegisterThingOutcome is how a RegisterThing ended, for its metric. */
export type RegisterThingOutcome = 'activated' | 'replayed' | 'rejected'

/** RegisterThingDeps are what RegisterThing reads and changes. */
export interface RegisterThingDeps {
  readonly registry: Registry
  readonly audit: Pick<AuditTrail, 'activated'>
  readonly templates: () => Templates
  readonly denied?: LifecycleOptions['denied']
  /**
   * The pending certificates changed (one activated, or one revoked because its token expired); resolves once the
   * CRL says so (embedded CA): an activated certificate's answer goes out when the CRL no longer holds it.
   */
  readonly pendingChanged: () => Promise<void>
  readonly tokenLifetimeMs: number
  readonly logger: Logger
  readonly observe?: ((outcome: RegisterThingOutcome) => void) | undefined
  /** spend takes a token of the identity's rate limit (RATE_LIMITED, 429, past it): a request costs registry reads. */
  readonly spend?: ((identity: string) => Promise<void>) | undefined
}

/** UNKNOWN_TOKEN is said of a token that is not one, or not this identity's: the two are never told apart. */
const UNKNOWN_TOKEN = 'the certificate ownership token is unknown'

/**
 * registerThing activates the pending certificate a create call gave this identity, once, with its ownership token
 * within its lifetime, under a template the identity may use with parameters the template accepts. The
 * registry's conditional update (pending → active, token unexpired) is the "only once" across processes; the same
 * RegisterThing again (its answer lost) gets the same answer, another one with that token is refused.
 */
export function registerThingWith(deps: RegisterThingDeps) {
  return async (
    identity: DeviceIdentity,
    topic: AwsRequestTopic,
    body: Record<string, unknown>,
  ): Promise<Record<string, unknown>> => {
    try {
      await deps.spend?.(identity.id)
      const [outcome, answer] = await register(deps, identity.id, topic.templateName ?? '', body)
      deps.observe?.(outcome)
      return { ...answer }
    } catch (err) {
      deps.observe?.('rejected')
      throw err
    }
  }
}

async function register(
  deps: RegisterThingDeps,
  identity: string,
  templateName: string,
  body: Record<string, unknown>,
): Promise<[RegisterThingOutcome, RegisterThingAccepted]> {
  const request = registerThingRequestOf(body)
  const template = TEMPLATE_NAME.test(templateName) ? deps.templates().get(templateName) : undefined
  if (!template) throw new AwsError(404, 'TemplateNotFound', `no provisioning template ${templateName}`)
  if (!mayUse(template, identity))
    throw new AwsError(403, 'AccessDenied', `template ${templateName} is not for this identity`)
  const sha256 = tokenSha256(request.certificateOwnershipToken)
  const record = await deps.registry.byOwnershipToken(sha256)
  if (!record || record.identity !== identity) throw invalidToken(UNKNOWN_TOKEN)
  // the deny list in force: the identity, or the very certificate to activate
  const listed = denialOf(deps.denied, identity, record)
  if (listed !== undefined) throw new AwsError(403, 'AccessDenied', listed)
  const now = new Date()
  if (!record.tokenExpiresAt || record.tokenExpiresAt <= now) {
    if (record.state === 'pending' && (await deps.registry.expirePending(now, deps.tokenLifetimeMs)) > 0)
      await deps.pendingChanged()
    throw invalidToken('the certificate ownership token expired; call the create API again')
  }
  let filled: ReturnType<typeof fill>
  try {
    filled = fill(template, identity, request.parameters)
  } catch (err) {
    throw new AwsError(400, 'InvalidParameters', (err as Error).message)
  }
  const provisioning: Provisioning = {
    templateName,
    thingName: filled.thingName,
    provisionHash: provisionHash(templateName, filled.parameters),
    deviceConfiguration: filled.deviceConfiguration,
  }
  if (
    record.state === 'pending' &&
    (await deps.registry.activate(record.serialNumber, sha256, now, provisioning))
  ) {
    await deps.pendingChanged()
    const activated = {
      identity,
      serialNumber: record.serialNumber,
      template: templateName,
      thingName: filled.thingName,
    }
    deps.audit.activated(activated)
    deps.logger.info(activated, 'certificate activated (RegisterThing)')
    return ['activated', accepted(provisioning)]
  }
  // not pending (any more): the same RegisterThing again gets its answer; anything else is refused
  return [
    'replayed',
    accepted(alreadyRegistered(await deps.registry.certificate(record.serialNumber), provisioning)),
  ]
}

/** alreadyRegistered is the provisioning this same RegisterThing recorded, or the refusal of another one. */
function alreadyRegistered(record: IssuanceRecord | undefined, asked: Provisioning): Provisioning {
  const done = record?.provisioning
  if (record?.state !== 'active' || !done || done.provisionHash !== asked.provisionHash)
    throw invalidToken('the certificate ownership token was already used')
  return done
}

const accepted = (p: Provisioning): RegisterThingAccepted => ({
  deviceConfiguration: p.deviceConfiguration,
  thingName: p.thingName,
})

/** provisionHash is the hash of a template name and the parameters it resolved (sorted). */
function provisionHash(templateName: string, parameters: Record<string, string>): string {
  const sorted = Object.keys(parameters)
    .sort()
    .map((k) => [k, parameters[k]])
  return createHash('sha256')
    .update(JSON.stringify([templateName, sorted]))
    .digest('hex')
}
