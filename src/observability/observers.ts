import { type BrokerObserver, REFUSAL_REASONS } from '../broker/broker.js'
import type { KubeObserver } from '../issuers/cert-manager/kube-api.js'
import type { RegistrationObserver } from '../registration/observer.js'
import type { BridgeMetrics } from './bridge-metrics.js'
import { initRefusals, initRegistrations } from './initial-series.js'

/** registrationMetrics feeds the registration service's reports into the metrics. */
export function registrationMetrics(metrics: BridgeMetrics, issuer: string): RegistrationObserver {
  initRegistrations(metrics, issuer)
  return {
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

/** brokerMetrics feeds the broker's connection reports into the metrics. */
export function brokerMetrics(metrics: BridgeMetrics): BrokerObserver {
  initRefusals(metrics, REFUSAL_REASONS)
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
