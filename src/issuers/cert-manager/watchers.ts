import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import type { ApiThrottle } from './api-throttle.js'
import { CERT_MANAGER_GROUP, CERT_MANAGER_VERSION } from './kube-api.js'
import { LABEL_SELECTOR } from './names.js'
import type { Certificate, CertificateRequest, IssuerObject, IssuerRef, Secret } from './resources.js'
import { ResourceWatcher, type WatchTuning } from './watcher.js'

/** Watchers are the shared informers: one per resource kind the bridge writes, and one on its issuer. */
export interface Watchers {
  readonly certificates: ResourceWatcher<Certificate>
  readonly requests: ResourceWatcher<CertificateRequest>
  readonly secrets: ResourceWatcher<Secret>
  /** The Issuer or ClusterIssuer named by issuerRef (a field selector on its name), for its Ready condition. */
  readonly issuer: ResourceWatcher<IssuerObject>
}

/** createWatchers makes the four watchers; every list and watch goes through the API throttle. */
export function createWatchers(
  kc: KubeConfig,
  namespace: string,
  issuerRef: IssuerRef,
  throttle: ApiThrottle,
  tuning: WatchTuning,
  logger: Logger,
  onRestart?: (kind: string) => void,
): Watchers {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const core = kc.makeApiClient(CoreV1Api)
  const base = `/apis/${CERT_MANAGER_GROUP}/${CERT_MANAGER_VERSION}`
  const common = { kc, throttle, tuning, logger, onRestart }
  const customWatcher = <T extends Certificate | CertificateRequest>(plural: string) =>
    new ResourceWatcher<T>({
      ...common,
      kind: plural,
      path: `${base}/namespaces/${namespace}/${plural}`,
      labelSelector: LABEL_SELECTOR,
      list: () =>
        custom.listNamespacedCustomObject({
          group: CERT_MANAGER_GROUP,
          version: CERT_MANAGER_VERSION,
          namespace,
          plural,
          labelSelector: LABEL_SELECTOR,
        }),
    })
  const fieldSelector = `metadata.name=${issuerRef.name}`
  const cluster = issuerRef.kind === 'ClusterIssuer'
  const issuerPlural = cluster ? 'clusterissuers' : 'issuers'
  return {
    certificates: customWatcher<Certificate>('certificates'),
    requests: customWatcher<CertificateRequest>('certificaterequests'),
    secrets: new ResourceWatcher<Secret>({
      ...common,
      kind: 'secrets',
      path: `/api/v1/namespaces/${namespace}/secrets`,
      labelSelector: LABEL_SELECTOR,
      list: () => core.listNamespacedSecret({ namespace, labelSelector: LABEL_SELECTOR }),
    }),
    issuer: new ResourceWatcher<IssuerObject>({
      ...common,
      kind: issuerPlural,
      path: cluster ? `${base}/clusterissuers` : `${base}/namespaces/${namespace}/issuers`,
      fieldSelector,
      list: () =>
        cluster
          ? custom.listClusterCustomObject({
              group: CERT_MANAGER_GROUP,
              version: CERT_MANAGER_VERSION,
              plural: issuerPlural,
              fieldSelector,
            })
          : custom.listNamespacedCustomObject({
              group: CERT_MANAGER_GROUP,
              version: CERT_MANAGER_VERSION,
              namespace,
              plural: issuerPlural,
              fieldSelector,
            }),
    }),
  }
}
