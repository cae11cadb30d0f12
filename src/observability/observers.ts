import { type BrokerObserver, REFUSAL_REASONS } from '../broker/broker.js'
import type { KubeObserver } from '../issuers/cert-manager/kube-api.js'
import { ERROR_CODES } from '../protocol/errors.js'
import type { HookObserver, HookResult } from '../registration/hook/client.js'
import type { Outcome, RegistrationObserver } from '../registration/observer.js'
import type { BridgeMetrics } from './metrics.js'

// Each counter series starts at 0 (see metrics.ts); a Record, so the compiler says when an outcome is added.
const OUTCOMES: Record<Outcome, true> = { issued: true, replayed: true, coalesced: true, rejected: true }
const MODES = ['', 'csr', 'server_key'] as const
const VIA = ['device', 'gateway', 'aws'] as const

/**
 * registrationMetrics feeds the registration service's reports into the metrics. Its series start at 0 for this
 * issuer, every way (device, gateway) and mode (none when the request could not be read): the answered outcomes
 * without a code, and a rejection with every error code.
 */
export function registrationMetrics(metrics: BridgeMetrics, issuer: string): RegistrationObserver {
  for (const via of VIA)
    for (const mode of MODES) {
      for (const outcome of Object.keys(OUTCOMES))
        if (outcome !== 'rejected') metrics.registrations.inc({ outcome, code: '', mode, issuer, via }, 0)
      for (const code of Object.keys(ERROR_CODES))
        metrics.registrations.inc({ outcome: 'rejected', code, mode, issuer, via }, 0)
    }
  for (const outcome of ['activated', 'replayed', 'rejected']) metrics.awsRegisterThing.inc({ outcome }, 0)
  return {
    registerThing: (outcome) => metrics.awsRegisterThing.inc({ outcome }),
    answered({ outcome, code, mode, seconds, via }) {
      metrics.registrations.inc({ outcome, code: code ?? '', mode: mode ?? '', issuer, via: via ?? 'device' })
      metrics.registrationDuration.observe({ outcome }, seconds)
      if (code === 'RATE_LIMITED') metrics.rateLimited.inc()
      if (outcome === 'issued') metrics.devicesChanged()
    },
    issuanceStarted: () => metrics.inFlight.inc(),
    issuanceEnded(seconds, ok) {
      metrics.inFlight.dec()
      metrics.issuanceDuration.observe({ issuer, result: ok ? 'ok' : 'error' }, seconds)
    },
    auditAppended: (seconds) => metrics.auditAppendDuration.observe(seconds),
  }
}

/** brokerMetrics feeds the broker's connection reports into the metrics (every refusal reason from 0). */
export function brokerMetrics(metrics: BridgeMetrics): BrokerObserver {
  for (const reason of REFUSAL_REASONS) metrics.connectionsRefused.inc({ reason }, 0)
  return {
    connectionOpened: () => metrics.connectionsOpen.inc(),
    connectionClosed: () => metrics.connectionsOpen.dec(),
    connectionRefused: (reason) => metrics.connectionsRefused.inc({ reason }),
    tlsHandshakeFailed: () => metrics.tlsHandshakeFailures.inc(),
  }
}

/** kubeMetrics feeds the cert-manager issuer's API calls and watch restarts into the metrics. */
export function kubeMetrics(metrics: BridgeMetrics): KubeObserver {
  return {
    apiRequest: (verb, status) => metrics.kubeRequests.inc({ verb, status }),
    watchRestarted: (resource) => metrics.kubeWatchRestarts.inc({ resource }),
  }
}

const HOOK_RESULTS: Record<HookResult, true> = { allow: true, deny: true, error: true, timeout: true }

/** hookMetrics feeds the registration hook's calls into the metrics (every result from 0). */
export function hookMetrics(metrics: BridgeMetrics): HookObserver {
  for (const result of Object.keys(HOOK_RESULTS)) metrics.hookCalls.inc({ result }, 0)
  return {
    called(result, seconds) {
      metrics.hookCalls.inc({ result })
      metrics.hookDuration.observe({ result }, seconds)
    },
  }
}
