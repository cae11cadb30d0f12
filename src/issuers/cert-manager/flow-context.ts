import type { KubeApi } from './kube-api.js'
import type { CertManagerOptions } from './resources.js'
import type { Watchers } from './watchers.js'

/** FlowContext is what both issuance flows share. */
export interface FlowContext {
  readonly api: KubeApi
  readonly watchers: Watchers
  readonly options: CertManagerOptions
  /** inFlight names the Certificates and CertificateRequests a registration is working on now. */
  readonly inFlight: Set<string>
  /** cleanup runs a deletion after the answer, tracked so that close() waits for it. */
  cleanup(task: (signal: AbortSignal) => Promise<void>): void
}
