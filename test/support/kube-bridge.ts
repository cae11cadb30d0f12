import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from './bridge.js'
import { type KubeApiServer, startKubeApiServer } from './kube/api-server.js'
import {
  CLUSTER_RESOURCE_NAMESPACE,
  EmulatedCertManager,
  type EmulatedCertManagerOptions,
} from './kube/cert-manager.js'
import { rolesFromYaml } from './kube/rbac.js'
import { findResource, type ResourceType } from './kube/resources.js'
import { certManagerWebhook } from './kube/webhook.js'
import { createTestPki, type TestPki } from './pki.js'

const all = (): boolean => true

/** NAMESPACE is where the cert-manager tests run. */
export const NAMESPACE = 'devices'
const resource = (group: string, plural: string) => findResource(group, plural) as ResourceType
/** The emulated resources, for reading the store in tests. */
export const RESOURCE = {
  certificates: resource('cert-manager.io', 'certificates'),
  requests: resource('cert-manager.io', 'certificaterequests'),
  issuers: resource('cert-manager.io', 'issuers'),
  clusterIssuers: resource('cert-manager.io', 'clusterissuers'),
  secrets: resource('', 'secrets'),
}

/** KubeWorld is an emulated cluster with cert-manager and a CA Issuer named `ca`, signing with the test PKI's issuing CA. */
export interface KubeWorld {
  readonly api: KubeApiServer
  readonly certManager: EmulatedCertManager
  readonly pki: TestPki
  readonly kubeconfig: string
  /** The bridge's issuer settings for this world (the Issuer `ca`, or in a `cluster` world the ClusterIssuer). */
  readonly issuerSets: readonly string[]
  /** startBridge starts a bridge on the cert-manager issuer and waits for its informers to sync. */
  startBridge(sets?: readonly string[]): Promise<TestBridge>
  count(r: ResourceType): number
  /** until resolves once `predicate` holds, checked now and after every change in the cluster. */
  until(predicate: () => boolean): Promise<void>
  close(): Promise<void>
}

/** BRIDGE_TOKEN is the bearer token of the bridge's account in a `cluster` world (deploy/'s RBAC applies). */
export const BRIDGE_TOKEN = 'bridge'
/** deploy/role.yaml, from test/support/ or from its compiled copy in dist-bench/test/support/ (bench/). */
const ROLE_YAML = ['../../deploy/role.yaml', '../../../deploy/role.yaml']
  .map((p) => join(import.meta.dirname, p))
  .find((p) => existsSync(p)) as string
/** BRIDGE_USER is who the API server records for BRIDGE_TOKEN: the bridge's service account. */
export const BRIDGE_USER = `system:serviceaccount:${NAMESPACE}:mqtt-registration-bridge`

/**
 * startKubeWorld starts the API emulation (with cert-manager's webhook), the cert-manager emulation and the
 * CA Issuer `ca`. With `cluster`, the world is deploy/'s: a ClusterIssuer `device-ca` whose CA key is in
 * cert-manager's namespace, and the bridge's account limited to deploy/role.yaml (403 otherwise).
 */
export async function startKubeWorld(
  options: Partial<EmulatedCertManagerOptions> & { cluster?: boolean } = {},
): Promise<KubeWorld> {
  const api = await startKubeApiServer()
  const pki = await createTestPki()
  api.createNamespace(NAMESPACE)
  api.admission.push(certManagerWebhook)
  const certManager = new EmulatedCertManager(api.store, options)
  const b64 = async (file: string) => Buffer.from(await readFile(pki.file(file))).toString('base64')
  api.store.create(RESOURCE.secrets, NAMESPACE, {
    metadata: { name: 'ca-key-pair' },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': await b64(DEV_PKI_FILES.issuingCaCert),
      'tls.key': await b64(DEV_PKI_FILES.issuingCaKey),
    },
  })
  api.store.create(RESOURCE.issuers, NAMESPACE, {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Issuer',
    metadata: { name: 'ca' },
    spec: { ca: { secretName: 'ca-key-pair' } },
  })
  let kubeconfig = await api.writeKubeconfig(pki.stateDir, NAMESPACE)
  const issuerSets = ['issuer.certManager.issuerRef.name=ca']
  if (options.cluster) {
    api.createNamespace(CLUSTER_RESOURCE_NAMESPACE)
    api.store.create(RESOURCE.secrets, CLUSTER_RESOURCE_NAMESPACE, {
      metadata: { name: 'device-ca-key-pair' },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': await b64(DEV_PKI_FILES.issuingCaCert),
        'tls.key': await b64(DEV_PKI_FILES.issuingCaKey),
      },
    })
    api.store.create(RESOURCE.clusterIssuers, '', {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: 'device-ca' },
      spec: { ca: { secretName: 'device-ca-key-pair' } },
    })
    api.grant(BRIDGE_TOKEN, {
      user: BRIDGE_USER,
      roles: rolesFromYaml(ROLE_YAML, NAMESPACE),
    })
    kubeconfig = await api.writeKubeconfig(pki.stateDir, NAMESPACE, BRIDGE_TOKEN)
    issuerSets.splice(
      0,
      1,
      'issuer.certManager.issuerRef.name=device-ca',
      'issuer.certManager.issuerRef.kind=ClusterIssuer',
    )
  }
  return {
    api,
    certManager,
    pki,
    kubeconfig,
    issuerSets,
    async startBridge(sets = []) {
      const bridge = await startTestBridge(
        [
          'issuer.type=cert-manager',
          `issuer.certManager.namespace=${NAMESPACE}`,
          ...issuerSets,
          `issuer.certManager.kubeconfig=${kubeconfig}`,
          'registration.rateLimit.burst=1000',
          // client-go's schedule, scaled down so that fault tests stay short
          'issuer.certManager.watchBackoffInitialMs=50',
          'issuer.certManager.watchBackoffMaxMs=1000',
          ...sets,
        ],
        pki,
      )
      await bridge.bridge.issuerStarted
      return bridge
    },
    count: (r) => api.store.list(r, NAMESPACE, all, all).length,
    until: (predicate) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (!predicate()) return
          api.store.off('event', check)
          resolve()
        }
        api.store.on('event', check)
        check()
      }),
    async close() {
      certManager.stop()
      await api.close()
    },
  }
}
