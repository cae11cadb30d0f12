import type { Agent, AgentOptions } from 'node:https'
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import type { Credentials, IssuanceOrder, Issuer } from '../issuer.js'
import { type CertificateTemplate, expandTemplate } from '../template.js'
import type { ApiThrottleOptions } from './api-throttle.js'
import { issueWithCertificate } from './certificate-flow.js'
import type { CertManagerOptions, FlowContext, Watchers } from './flow-context.js'
import { CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, KubeApi, type KubeObserver } from './kube-api.js'
import { LABEL_SELECTOR } from './names.js'
import { issueWithRequest } from './request-flow.js'
import type { Certificate, CertificateRequest, Secret } from './resources.js'
import { ResourceWatcher } from './watcher.js'

/** CertManagerIssuerOptions configure the cert-manager issuer. */
export interface CertManagerIssuerOptions extends CertManagerOptions {
  /** A kubeconfig file; unset: the pod's service account in a cluster, else the default kubeconfig. */
  readonly kubeconfig?: string | undefined
  readonly template: CertificateTemplate
  readonly throttle: ApiThrottleOptions
  readonly logger: Logger
  readonly observer?: KubeObserver | undefined
}

/** loadKubeConfig finds cluster credentials the way kubectl and in-cluster clients do. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig()
  if (file) kc.loadFromFile(file)
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster()
  else kc.loadFromDefault()
  return reuseConnections(kc)
}

type AgentFactory = (cluster: unknown, options: AgentOptions) => Agent

/**
 * reuseConnections makes client-node keep its connections to the API server. client-node 1.4 builds a new
 * https.Agent for every request, so every API call pays a TLS handshake on both sides; one keep-alive agent
 * (the TLS options are the same for every request of one kubeconfig) makes a registration's writes cheap.
 */
function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: AgentFactory }
  const create = target.createAgent.bind(kc)
  let shared: Agent | undefined
  target.createAgent = (cluster, options) => {
    shared ??= create(cluster, { ...options, keepAlive: true, maxSockets: 64 })
    return shared
  }
  return kc
}

function createWatchers(
  kc: KubeConfig,
  namespace: string,
  logger: Logger,
  observer?: KubeObserver,
): Watchers {
  const onRestart = (kind: string): void => observer?.watchRestarted(kind)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const core = kc.makeApiClient(CoreV1Api)
  const customWatcher = <T extends Certificate | CertificateRequest>(plural: string) =>
    new ResourceWatcher<T>(
      plural,
      kc,
      `/apis/${CERT_MANAGER_GROUP}/${CERT_MANAGER_VERSION}/namespaces/${namespace}/${plural}`,
      () =>
        custom.listNamespacedCustomObject({
          group: CERT_MANAGER_GROUP,
          version: CERT_MANAGER_VERSION,
          namespace,
          plural,
          labelSelector: LABEL_SELECTOR,
        }),
      LABEL_SELECTOR,
      logger,
      onRestart,
    )
  return {
    certificates: customWatcher<Certificate>('certificates'),
    requests: customWatcher<CertificateRequest>('certificaterequests'),
    secrets: new ResourceWatcher<Secret>(
      'secrets',
      kc,
      `/api/v1/namespaces/${namespace}/secrets`,
      () => core.listNamespacedSecret({ namespace, labelSelector: LABEL_SELECTOR }),
      LABEL_SELECTOR,
      logger,
      onRestart,
    ),
  }
}

/**
 * CertManagerIssuer asks cert-manager for certificates: a Certificate when the bridge must provide the key,
 * a CertificateRequest when the device sent a CSR. Waiting is by three shared, label-filtered informers.
 */
export class CertManagerIssuer implements Issuer {
  readonly name = 'cert-manager'
  readonly #options: CertManagerIssuerOptions
  readonly #context: FlowContext
  readonly #cleanups = new Set<Promise<void>>()
  readonly #cleanupController = new AbortController()

  constructor(options: CertManagerIssuerOptions, kc: KubeConfig = loadKubeConfig(options.kubeconfig)) {
    this.#options = options
    const logger = options.logger.child({ issuer: 'cert-manager' })
    this.#context = {
      api: new KubeApi(kc, options.namespace, options.throttle, logger, options.observer),
      watchers: createWatchers(kc, options.namespace, logger, options.observer),
      options,
      cleanup: (task) => {
        const done = task(this.#cleanupController.signal)
          .catch((err: unknown) => logger.warn({ err }, 'clean-up after delivery failed'))
          .finally(() => this.#cleanups.delete(done))
        this.#cleanups.add(done)
      },
    }
  }

  /** start syncs the informers; readiness waits for it. */
  async start(): Promise<void> {
    const { certificates, requests, secrets } = this.#context.watchers
    await Promise.all([certificates.start(), requests.start(), secrets.start()])
  }

  /** isReady is true once every informer has synced. */
  isReady(): boolean {
    return Object.values(this.#context.watchers).every((w: { synced: boolean }) => w.synced)
  }

  issue(order: IssuanceOrder, signal: AbortSignal): Promise<Credentials> {
    if (order.csr)
      return issueWithRequest(
        this.#context,
        { ...order, csr: order.csr },
        this.#options.template.validityHours,
        signal,
      )
    return issueWithCertificate(
      this.#context,
      order,
      expandTemplate(this.#options.template, order.identity, order.registeredBy),
      signal,
    )
  }

  /** close waits (briefly) for clean-ups and stops the informers. */
  async close(): Promise<void> {
    const deadline = setTimeout(() => this.#cleanupController.abort(new Error('shutting down')), 5_000)
    await Promise.allSettled([...this.#cleanups])
    clearTimeout(deadline)
    await Promise.all(Object.values(this.#context.watchers).map((w: { stop(): Promise<void> }) => w.stop()))
  }
}
