import type { KubeApi } from './kube-api.js'
import type { Certificate, CertificateRequest, IssuerRef, Secret } from './resources.js'
import type { ResourceWatcher } from './watcher.js'

/** CertManagerOptions are the validated settings of the cert-manager issuer. */
export interface CertManagerOptions {
  readonly namespace: string
  readonly issuerRef: IssuerRef
  readonly secretRetention: 'delete' | 'keep'
  readonly requestRetention: 'delete' | 'keep'
}

/** Watchers are the three shared informers, one per resource kind. */
export interface Watchers {
  readonly certificates: ResourceWatcher<Certificate>
  readonly requests: ResourceWatcher<CertificateRequest>
  readonly secrets: ResourceWatcher<Secret>
}

/** FlowContext is what both issuance flows share. */
export interface FlowContext {
  readonly api: KubeApi
  readonly watchers: Watchers
  readonly options: CertManagerOptions
  /** cleanup runs a deletion after the answer, tracked so that close() waits for it. */
  cleanup(task: (signal: AbortSignal) => Promise<void>): void
}
