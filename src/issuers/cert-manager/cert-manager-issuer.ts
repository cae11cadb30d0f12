import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { RegistrationError } from '../../protocol/errors.js'
import type { Credentials, IssuanceOrder, Issuer } from '../issuer.js'
import type { ApiThrottleOptions } from './api-throttle.js'
import { issueWithCertificate } from './certificate-flow.js'
import type { FlowContext } from './flow-context.js'
import { KubeApi, type KubeObserver } from './kube-api.js'
import { loadKubeConfig } from './kube-config.js'
import { type ReconcileResult, reconcileLeftovers } from './reconciler.js'
import { issueWithRequest } from './request-flow.js'
import { type CertManagerOptions, conditionOf } from './resources.js'
import type { WatchTuning } from './watcher.js'
import { createWatchers } from './watchers.js'

export interface CertManagerIssuerOptions extends CertManagerOptions {
  /** A kubeconfig file; unset: the pod's service account in a cluster, else the default kubeconfig. */
  readonly kubeconfig?: string | undefined
  readonly throttle: ApiThrottleOptions
  readonly logger: Logger
  readonly observer?: KubeObserver | undefined
  readonly watch: WatchTuning
  /** Leftovers older than this (the registration timeout) that nobody waits on are removed. */
  readonly leftoverAgeMs: number
  /** How often the reconciler looks for leftovers (the informers' resync period). */
  readonly resyncMs: number
}

/** CERT_MANAGER_COMMON_NAME_MAX is the webhook's limit on spec.commonName (bytes). */
export const CERT_MANAGER_COMMON_NAME_MAX = 64

/**
 * CertManagerIssuer asks cert-manager for certificates: a Certificate when the bridge must provide the key,
 * a CertificateRequest when the device sent a CSR. Waiting is by shared, label-filtered watchers; a
 * reconciler removes what nobody waits on any more, on start and on every resync.
 */
export class CertManagerIssuer implements Issuer {
  readonly name = 'cert-manager'
  readonly #options: CertManagerIssuerOptions
  readonly #context: FlowContext
  readonly #logger: Logger
  readonly #cleanups = new Set<Promise<void>>()
  readonly #cleanupController = new AbortController()
  #resyncTimer: NodeJS.Timeout | undefined
  #reconciling: Promise<ReconcileResult> | undefined

  constructor(options: CertManagerIssuerOptions, kc: KubeConfig = loadKubeConfig(options.kubeconfig)) {
    this.#options = options
    const logger = options.logger.child({ issuer: 'cert-manager' })
    this.#logger = logger
    const api = new KubeApi(kc, options.namespace, options.throttle, logger, options.observer)
    this.#context = {
      api,
      watchers: createWatchers(kc, options, api.throttle, logger),
      options,
      inFlight: new Set(),
      cleanup: (task) => {
        const done = task(this.#cleanupController.signal)
          .catch((err: unknown) => logger.warn({ err }, 'clean-up after delivery failed'))
          .finally(() => this.#cleanups.delete(done))
        this.#cleanups.add(done)
      },
    }
  }

  /** start syncs the watchers, then removes leftovers and schedules the resync; readiness waits for it. */
  async start(): Promise<void> {
    let wasReady: boolean | undefined
    this.#context.watchers.issuer.onChange(() => {
      const { ready, message } = this.#issuerState()
      if (ready === wasReady) return
      wasReady = ready
      if (ready) this.#logger.info('cert-manager issuer is Ready')
      else this.#logger.warn({ message }, 'cert-manager issuer is not Ready')
    })
    await Promise.all(Object.values(this.#context.watchers).map((w) => w.start()))
    await this.reconcile()
    this.#resyncTimer = setInterval(() => void this.reconcile(), this.#options.resyncMs)
    this.#resyncTimer.unref()
  }

  /** reconcile runs one reconciler pass (one at a time). */
  reconcile(): Promise<ReconcileResult> {
    this.#reconciling ??= reconcileLeftovers(
      this.#context,
      this.#options.leftoverAgeMs,
      this.#logger,
      this.#cleanupController.signal,
    ).finally(() => {
      this.#reconciling = undefined
    })
    return this.#reconciling
  }

  /** issuerReady is the Ready condition of the Issuer/ClusterIssuer, with its message when it is not. */
  #issuerState(): { ready: boolean; message: string } {
    const issuer = this.#context.watchers.issuer.get(this.#options.issuerRef.name)
    const ready = issuer && conditionOf(issuer, 'Ready')
    if (ready?.status === 'True') return { ready: true, message: '' }
    const { kind, name } = this.#options.issuerRef
    return {
      ready: false,
      message: ready?.message ?? (issuer ? 'it has no Ready condition' : `${kind} ${name} not found`),
    }
  }

  /** isReady is true while every watch is up and the Issuer/ClusterIssuer is Ready. */
  isReady(): boolean {
    return Object.values(this.#context.watchers).every((w) => w.healthy) && this.#issuerState().ready
  }

  async issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials> {
    const state = this.#issuerState()
    if (this.#context.watchers.issuer.healthy && !state.ready)
      // its condition's message (secret names, the issuer's internals) is logged when it changes, never sent
      throw new RegistrationError('ISSUER_UNAVAILABLE', 'the cert-manager issuer is not Ready; retry later', {
        cause: new Error(state.message),
      })
    if (order.csr) return issueWithRequest(this.#context, { ...order, csr: order.csr }, signal)
    // the webhook refuses such a Certificate (CSR mode: the CN is in the CSR, which it does not limit)
    if (Buffer.byteLength(order.identity) > CERT_MANAGER_COMMON_NAME_MAX)
      throw new RegistrationError(
        'ISSUANCE_FAILED',
        `cert-manager refuses a commonName longer than ${CERT_MANAGER_COMMON_NAME_MAX} bytes; use a shorter device id`,
      )
    return issueWithCertificate(this.#context, order, signal)
  }

  /** close waits (briefly) for clean-ups and stops the watchers. */
  async close(): Promise<void> {
    clearInterval(this.#resyncTimer)
    const deadline = setTimeout(() => this.#cleanupController.abort(new Error('shutting down')), 5_000)
    await Promise.allSettled([...this.#cleanups, this.#reconciling])
    clearTimeout(deadline)
    await Promise.all(Object.values(this.#context.watchers).map((w) => w.stop()))
  }
}
