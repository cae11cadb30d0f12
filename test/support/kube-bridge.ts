import { readFile } from 'node:fs/promises'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { startTestBridge, type TestBridge } from './bridge.js'
import { type KubeApiServer, startKubeApiServer } from './kube/api-server.js'
import { EmulatedCertManager, type EmulatedCertManagerOptions } from './kube/cert-manager.js'
import { findResource, type ResourceType } from './kube/resources.js'
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
  secrets: resource('', 'secrets'),
}

/** KubeWorld is an emulated cluster with cert-manager and a CA Issuer named `ca`, signing with the test PKI's issuing CA. */
export interface KubeWorld {
  readonly api: KubeApiServer
  readonly certManager: EmulatedCertManager
  readonly pki: TestPki
  readonly kubeconfig: string
  /** startBridge starts a bridge on the cert-manager issuer and waits for its informers to sync. */
  startBridge(sets?: readonly string[]): Promise<TestBridge>
  count(r: ResourceType): number
  /** until resolves once `predicate` holds, checked now and after every change in the cluster. */
  until(predicate: () => boolean): Promise<void>
  close(): Promise<void>
}

/** startKubeWorld starts the API emulation, the cert-manager emulation and the CA Issuer. */
export async function startKubeWorld(options: Partial<EmulatedCertManagerOptions> = {}): Promise<KubeWorld> {
  const api = await startKubeApiServer()
  const pki = await createTestPki()
  api.createNamespace(NAMESPACE)
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
  const kubeconfig = await api.writeKubeconfig(pki.stateDir, NAMESPACE)
  return {
    api,
    certManager,
    pki,
    kubeconfig,
    async startBridge(sets = []) {
      const bridge = await startTestBridge(
        [
          'issuer.type=cert-manager',
          `issuer.certManager.namespace=${NAMESPACE}`,
          'issuer.certManager.issuerRef.name=ca',
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
