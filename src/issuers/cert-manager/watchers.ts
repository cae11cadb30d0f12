import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import type { ApiThrottle } from './api-throttle.js'
import { CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, type KubeObserver } from './kube-api.js'
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
  options: {
    namespace: string
    issuerRef: IssuerRef
    watch: WatchTuning
    observer?: KubeObserver | undefined
  },
  throttle: ApiThrottle,
  logger: Logger,
): Watchers {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const core = kc.makeApiClient(CoreV1Api)
  const { namespace, issuerRef, observer } = options
  const onRestart = (kind: string) => observer?.watchRestarted(kind)
  const common = { kc, throttle, tuning: options.watch, logger, onRestart }
  /** customWatcher watches one cert-manager plural: in the namespace, or cluster-wide for clusterissuers. */
  const customWatcher = <T extends KubernetesObject>(
    plural: string,
    selector: { labelSelector: string } | { fieldSelector: string },
  ) => {
    const query = { group: CERT_MANAGER_GROUP, version: CERT_MANAGER_VERSION, plural, ...selector }
    const clusterWide = plural === 'clusterissuers'
    const scope = clusterWide ? '' : `namespaces/${namespace}/`
    return new ResourceWatcher<T>({
      ...common,
      ...selector,
      kind: plural,
      path: `/apis/${CERT_MANAGER_GROUP}/${CERT_MANAGER_VERSION}/${scope}${plural}`,
      list: () =>
        clusterWide
          ? custom.listClusterCustomObject(query)
          : custom.listNamespacedCustomObject({ ...query, namespace }),
    })
  }
  const own = { labelSelector: LABEL_SELECTOR }
  return {
    certificates: customWatcher<Certificate>('certificates', own),
    requests: customWatcher<CertificateRequest>('certificaterequests', own),
    secrets: new ResourceWatcher<Secret>({
      ...common,
      ...own,
      kind: 'secrets',
      path: `/api/v1/namespaces/${namespace}/secrets`,
      list: () => core.listNamespacedSecret({ namespace, ...own }),
    }),
    issuer: customWatcher<IssuerObject>(issuerRef.kind === 'ClusterIssuer' ? 'clusterissuers' : 'issuers', {
      fieldSelector: `metadata.name=${issuerRef.name}`,
    }),
  }
}
