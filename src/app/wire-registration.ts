import type { BootstrapBroker } from '../broker/broker.js'
import type { TlsReloader } from '../broker/tls-reloader.js'
import type { CleanupStack } from '../common/cleanup-stack.js'
import { type Config, ConfigError } from '../config/load.js'
import { awsFrontDoor } from '../registration/aws/front-door.js'
import { registerThingWith } from '../registration/aws/register-thing.js'
import { TemplatesSource } from '../registration/aws/templates.js'
import { GatewayService } from '../registration/gateway-batch.js'
import { GatewayPolicySource } from '../registration/gateway-policy.js'
import { devicePath } from '../registration/pipeline/paths.js'
import { routeRequests } from '../registration/route.js'
import {
  RegistrationService,
  type RegistrationServiceDeps,
  type RegistrationServiceOptions,
} from '../registration/service.js'
import type { SharedState } from '../state/shared-state.js'

// The one file that makes the registration service and the gateway path: their options, their collaborators.

/** RegistrationDeps are the registration pipeline's collaborators. */
export interface RegistrationDeps
  extends Pick<RegistrationServiceDeps, 'issuer' | 'registry' | 'audit' | 'logger' | 'observer' | 'hook'> {
  readonly state: SharedState
  readonly lifecycle: RegistrationServiceOptions['lifecycle']
  readonly broker: Pick<BootstrapBroker, 'publish' | 'publishPayload'>
  /** The broker's sessions are shared (Redis): a reply holding a private key is never queued in them. */
  readonly sharedSessions: boolean
  /** The TLS material in force: its production CA bundle goes with every reply. */
  readonly tls: Pick<TlsReloader, 'productionCaPem'>
  /** Told when the set of pending certificates changed; resolves once the CRL says so (embedded CA). */
  readonly pendingChanged: () => Promise<void>
}

/** wireRegistration makes the registration service and the gateway path over it, and delivers their answers. */
export function wireRegistration(config: Config, deps: RegistrationDeps, cleanup: CleanupStack) {
  const { registration: r, limits, gateways: g } = config
  const { issuer, registry, audit, state, broker, logger, observer } = deps
  let gatewayPolicy: GatewayPolicySource
  try {
    gatewayPolicy = new GatewayPolicySource(g.policyFile, logger) // a bad policy stops the bridge; watched later
  } catch (err) {
    throw new ConfigError([`gateways.policyFile: ${(err as Error).message}`])
  }
  cleanup.defer(() => gatewayPolicy.close())
  let templates: TemplatesSource
  try {
    templates = new TemplatesSource(config.aws.templatesFile, logger) // a bad file stops the bridge; watched later
  } catch (err) {
    throw new ConfigError([`aws.templatesFile: ${(err as Error).message}`])
  }
  cleanup.defer(() => templates.close())
  const service = new RegistrationService(
    {
      issuer,
      registry,
      audit,
      state,
      logger,
      observer,
      hook: deps.hook,
      notify: (identity, notice, format) =>
        void broker.publish(identity, notice, false, format).catch(() => {}),
    },
    {
      policy: {
        allowedKeyAlgorithms: r.allowedKeyAlgorithms,
        defaultKeyAlgorithm: r.defaultKeyAlgorithm,
        template: config.certificate,
      },
      requestMaxBytes: limits.maxRequestBytes,
      pendingAfterMs: r.pendingAfterMs,
      issuanceTimeoutMs: r.timeoutMs,
      rateLimit: r.rateLimit,
      replyCache: { ttlSeconds: r.replyCacheSeconds, maxEntries: r.replyCacheMaxEntries },
      // read on every reply, so that a re-read production CA file takes effect at once
      get extraTrustPem() {
        return deps.tls.productionCaPem
      },
      productionUrl: config.production.url,
      leaseMs: config.state.leaseMs,
      // a generated private key is never queued in shared (Redis) sessions: it reaches the device in transit only
      queueGeneratedKeys: !deps.sharedSessions,
      lifecycle: deps.lifecycle,
    },
  )
  const gateways = new GatewayService(
    {
      service,
      registry,
      state: deps.state,
      policy: gatewayPolicy,
      denied: deps.lifecycle?.denied,
      // a batch's replies go to a connected gateway only, never kept for an offline session: a kept `complete`
      // would claim devices whose replies were not kept (those with keys, those past the per-identity bound); a
      // gateway that lost its connection retries the batch and gets the same answers
      publish: (identity, payload, format) => broker.publishPayload(identity, payload, false, format),
      logger,
      observer,
    },
    {
      limits: { maxRequestBytes: g.maxRequestBytes, maxDevicesPerBatch: g.maxDevicesPerBatch },
      concurrency: g.concurrency,
    },
  )
  const routes = routeRequests(service, gateways, broker, logger)
  const aws = awsFrontDoor({
    service,
    registry,
    logger,
    requestMaxBytes: limits.maxRequestBytes,
    tokenLifetimeSeconds: config.aws.tokenLifetimeSeconds,
    registerThing: registerThingWith({
      registry,
      audit,
      templates: () => templates.current,
      denied: deps.lifecycle?.denied,
      pendingChanged: deps.pendingChanged,
      tokenLifetimeMs: config.aws.tokenLifetimeSeconds * 1000,
      logger,
      observe: observer?.registerThing?.bind(observer),
      // a RegisterThing spends a token of the identity's rate limit, as every request of the device does
      spend: devicePath(state, r.rateLimit).spend,
    }),
    pendingChanged: deps.pendingChanged,
  })
  return {
    gatewayPolicy,
    templates,
    /** Replies in the service's reply cache (a metric). */
    get cachedReplies() {
      return service.cachedReplies
    },
    /**
     * handle answers a request of a bootstrap topic, in the wire format of that topic: a gateway batch (the
     * extension), else protocol v1.
     */
    handle: routes.handle,
    /** handleAws answers a request of the AWS fleet-provisioning topics (aws.enabled). */
    handleAws: aws.handle,
    /** close answers what is in flight within shutdown.gracePeriodMs, and waits until it is published. */
    async close(): Promise<void> {
      await Promise.all([service.close(config.shutdown.gracePeriodMs), gateways.close()])
      await Promise.all([routes.settled(), aws.settled()])
    },
  }
}
