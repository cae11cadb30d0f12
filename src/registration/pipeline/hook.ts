import { randomUUID } from 'node:crypto'
import { type ExpandedTemplate, expandTemplate } from '../../issuers/template.js'
import { RegistrationError } from '../../protocol/errors.js'
import type { HookCall } from '../hook/contract.js'
import { pendingNotice } from './pending.js'
import type { Registration, Step } from './registration.js'

/**
 * hook: the operator's registration hook (docs/hook.md) is asked about this new issuance, once: after `replay`
 * (a retry answered from the reply cache or the registry never asks again) and `rateLimit` (a device cannot make
 * the bridge call it faster than its limit), under the lease (a second request waits), before `issue`. A device
 * that waits long for it is told `pending`, as it is while issuing. It allows,
 * maybe narrowing the certificate and assigning a production endpoint, or denies: REGISTRATION_DENIED with its
 * reason. A hook that cannot be asked fails closed (HOOK_UNAVAILABLE, retryable) unless `failOpen`.
 */
export const hook: Step = async (p, r, path) => {
  const { order } = r
  if (!p.hook || !order) return
  const offered = expandTemplate(p.settings.policy.template, r.identity, path.registeredBy)
  const call = {
    ...callOf(r, offered, path.registeredBy),
    ...(path.issuedState ? { api: 'aws' as const } : {}),
  }
  r.log.debug({ callId: call.callId }, 'asking the registration hook')
  const stopPending = pendingNotice(p, r, path)
  const decision = await p.hook.ask(call, offered, r.controller.signal).finally(stopPending)
  if (!decision.allow) {
    // the reason is sanitised (contract.ts); the rate limit before this step bounds these lines
    r.log.info({ callId: call.callId, reason: decision.reason }, 'registration hook denied')
    throw new RegistrationError('REGISTRATION_DENIED', decision.reason)
  }
  if (decision.failedOpen !== undefined)
    r.log.warn({ detail: decision.failedOpen }, 'registration hook unavailable: allowed (hook.failOpen)')
  const { narrowing, endpoint } = decision
  if (narrowing) {
    const granted = expandTemplate(p.settings.policy.template, r.identity, path.registeredBy, narrowing)
    const asked = order.csr?.subjectAltNames
    // an issuer that signs the CSR's own names (cert-manager) must not sign one the hook took away
    const refused = [...(asked?.dnsNames ?? []), ...(asked?.uris ?? [])].find(
      (name) => !granted.dnsNames.includes(name.toLowerCase()) && !granted.uris.includes(name),
    )
    if (refused !== undefined)
      throw new RegistrationError(
        'REGISTRATION_DENIED',
        `the CSR asks for a name the registration hook did not grant: ${refused}`,
      )
    r.order = { ...order, narrowing }
  }
  r.endpoint = endpoint
}

/** callOf is the body the hook gets for this registration (docs/hook.md). */
function callOf(r: Registration, offered: ExpandedTemplate, gateway: string | undefined): HookCall {
  const { order } = r
  return {
    version: 1,
    callId: randomUUID(),
    identity: r.identity,
    kind: r.renewing ? 'renewal' : 'registration',
    event: r.lifecycle?.event ?? null,
    gateway: gateway ?? null,
    requestId: r.request.requestId ?? null,
    keySource: order?.csr ? 'csr' : 'server-key',
    keyAlgorithm: order?.keyAlgorithm ?? '',
    renewing: r.renewing?.credential.serialNumber ?? null,
    certificate: {
      commonName: offered.commonName,
      organization: offered.organization ?? null,
      dnsNames: offered.dnsNames,
      uris: offered.uris,
      validityHours: offered.validityHours,
    },
  }
}
