import { RegistrationError } from '../../protocol/errors.js'
import { refuseDenied } from '../gateway-gate.js'
import { idempotencyKey } from '../idempotency.js'
import {
  checkRenewal,
  checkReRegistration,
  checkRevokedCredential,
  denialOf,
  recordedIssuance,
} from '../lifecycle-policy.js'
import { authorize as authorizeOrder } from '../policy.js'
import { fingerprintOf, issuedReply, recordedAnswer } from '../replies.js'
import { commit } from './commit.js'
import { hook } from './hook.js'
import { issue } from './issue.js'
import { spendToken } from './paths.js'
import type { Done, Step } from './registration.js'

/** open: a closing bridge takes no new request (ISSUER_UNAVAILABLE: retry, elsewhere or later). */
const open: Step = (p) => {
  if (p.closed()) throw new RegistrationError('ISSUER_UNAVAILABLE', 'the bridge is shutting down')
}

/** denyList: the deny list in force refuses the identity, or the certificate it connected with, at every request. */
const denyList: Step = (p, r) => {
  refuseDenied(p.settings.lifecycle?.denied, r.identity, r.credential)
}

/** renewal: a connection with an operational certificate renews it; a revoked one gets nothing, not even a replay. */
const renewal: Step = async (p, r) => {
  if (r.credential?.kind !== 'operational' || !p.settings.lifecycle) return
  const record = await checkRevokedCredential(p.registry, r.credential, r.identity)
  r.renewing = { credential: r.credential, record }
}

/** requestHash: the request's identity, requestId and content after defaults, with its gateway or renewal. */
const requestHash: Step = (p, r, path) => {
  const scope = r.renewing
    ? { renewing: r.renewing.credential.serialNumber }
    : path.registeredBy !== undefined
      ? { registeredBy: path.registeredBy }
      : path.issuedState === 'pending'
        ? ({ aws: true } as const)
        : {}
  r.key = idempotencyKey(r.identity, r.request, p.settings.policy.defaultKeyAlgorithm, scope)
}

/**
 * lease: the identity is held in flight for this request, across processes. The same request held elsewhere is
 * answered by its holder (silence here); another request gets REGISTRATION_IN_PROGRESS.
 */
const lease: Step = async (p, r) => {
  const held = await p.inFlight.hold(r.identity, r.key as string, r.controller)
  if (!held) return { silent: 'the same request is in flight' }
  r.lease = held
}

/**
 * record: the identity's registry record with its newest certificate, read once for every decision below (the
 * newest only: a registration's cost does not grow with the history).
 */
const record: Step = async (p, r) => {
  r.device = await p.registry.device(r.identity, { certificates: 1 })
}

/** authorize: the device policy (names, key algorithms, CSR) makes the order. */
const authorize: Step = (p, r, path) => {
  const order = authorizeOrder(r.identity, r.request, p.settings.policy, path.registeredBy)
  // a gateway's device: the template names the gateway (gatewayUris)
  r.order = path.registeredBy === undefined ? order : { ...order, registeredBy: path.registeredBy }
}

/** vet: the gateway policy, for a gateway's device (who may hold it; quotas). */
const vet: Step = async (_p, r, path) => {
  if (!path.vet || !r.order) return
  r.takeOver = (await path.vet(r.order, r.device)).takeOver
}

/**
 * replay: the answer already given to this request, while its certificate is the identity's newest and as issued
 * (active; pending on the AWS path):
 * the reply cache (with a generated key) or the registry's record (CSR mode: the recorded chain). One the deny list
 * names is refused (NOT_AUTHORIZED), never issued again.
 */
const replay: Step = (p, r, path) => {
  const newest = r.device?.certificates[0]
  const cached = p.cache?.get(r.key as string)
  const state = path.issuedState ?? 'active'
  const earlier =
    cached && newest?.serialNumber === cached.serialNumber && newest.state === state
      ? cached
      : recordedAnswer(p, r.device, r, state)
  if (!earlier) return
  const cert = { serialNumber: earlier.serialNumber, sha256Fingerprint: fingerprintOf(earlier.certificate) }
  const denied = denialOf(p.settings.lifecycle?.denied, r.identity, cert)
  if (denied !== undefined) throw new RegistrationError('NOT_AUTHORIZED', denied)
  return { reply: earlier, outcome: 'replayed' }
}

/**
 * rateLimit: a new issuance spends one token of the path's limit (the identity's, or the gateway's quota rate); a
 * renewal one of the renewal limit too. Every bucket lives in the shared state: the limits hold across processes.
 */
const rateLimit: Step = async (p, r, path) => {
  await path.spend(r.identity)
  const limit = p.settings.lifecycle?.renewalRateLimit
  if (r.renewing && limit) await spendToken(p.state, `renewal:${r.identity}`, limit, 'too many renewals')
}

/**
 * lifecycle: a renewal (checkRenewal) supersedes the certificate connected with; a registration passes the
 * re-registration policy (a gateway renews the devices it owns, or takes one over where its policy says so). The
 * registry's record of this very request within the retry window makes it a retry of that issuance (retryOf).
 */
const lifecycle: Step = (p, r, path) => {
  const options = p.settings.lifecycle
  if (!options || !r.order) return
  const { device, renewing } = r
  // a retry is of a certificate still as issued: one RegisterThing activated is no create call's retry
  const recorded = recordedIssuance(device, r.key as string, p.retryWindowMs)
  const retryOf = recorded?.state === (path.issuedState ?? 'active') ? recorded.serialNumber : undefined
  if (renewing) {
    r.lifecycle = {
      event: 'renewed',
      supersedes: checkRenewal(device, renewing, r.order, options.renewal, retryOf),
    }
    return
  }
  const { registeredBy } = path
  const known = checkReRegistration(device, options.reRegistration, {
    retryOf,
    registeredBy,
    takeOver: r.takeOver,
  })
  const event = !known ? 'registered' : registeredBy === undefined ? 're-registered' : 'renewed'
  r.lifecycle = { event, supersedes: retryOf }
}

/** answer: the committed certificate becomes the reply, kept in the reply cache for a retry of the request. */
const answer: Step = (p, r) => {
  if (!r.credentials) throw new Error('answer before issue')
  const reply = issuedReply(
    r.credentials,
    r.request.requestId,
    p.settings,
    r.endpoint ?? p.settings.productionUrl,
  )
  p.cache?.set(r.key as string, reply)
  return { reply, outcome: 'issued' } satisfies Done
}

/**
 * STEPS is the registration pipeline, in order, for every request: a device's registration or renewal and each
 * device of a gateway batch. docs/architecture.md draws it.
 */
export const STEPS = {
  open,
  denyList,
  renewal,
  requestHash,
  lease,
  record,
  authorize,
  vet,
  replay,
  rateLimit,
  lifecycle,
  hook,
  issue,
  commit,
  answer,
} as const satisfies Record<string, Step>
