import { MemoryState } from '../../state/memory.js'
import { InFlight } from '../in-flight.js'
import { LifecycleGate } from '../renewal.js'
import { ReplyCache } from '../reply-cache.js'
import type { RegistrationServiceDeps, RegistrationServiceOptions } from '../service-options.js'
import type { Pipeline } from './registration.js'

/** createPipeline gathers what the steps work with, from the service's collaborators and settings. */
export function createPipeline(
  deps: RegistrationServiceDeps,
  options: RegistrationServiceOptions,
  closed: () => boolean,
): Pipeline {
  const state = deps.state ?? new MemoryState()
  const retryWindowMs = options.replyCache.ttlSeconds * 1000
  return {
    settings: options,
    issuer: deps.issuer,
    registry: deps.registry,
    audit: deps.audit,
    state,
    inFlight: new InFlight(state, options.leaseMs),
    cache: new ReplyCache(options.replyCache),
    replay: {
      retryWindowMs,
      // read on every reply: a re-read production CA file applies at once
      get extraTrustPem() {
        return options.extraTrustPem
      },
      productionUrl: options.productionUrl,
      denied: options.lifecycle?.denied,
    },
    lifecycle: options.lifecycle && new LifecycleGate(options.lifecycle, retryWindowMs),
    notify: deps.notify,
    observer: deps.observer,
    closed,
  }
}
