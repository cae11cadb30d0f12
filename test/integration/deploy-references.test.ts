import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { run } from '../support/tools.js'

// Every kustomization the repository ships renders to objects that point at each other by name: a Certificate
// at its issuer, a pod at the Secrets and ConfigMaps it mounts or reads, the bridge's configuration at the
// issuer it asks. A name that points at nothing is a pod that never starts or a Certificate never issued, and
// kubectl accepts it without a word. This resolves every such reference, in every kustomization, to an object of
// that kind in the render, or to one the docs tell the user to create (USER_CREATED below, checked against the
// docs' text).

const repo = new URL('../../', import.meta.url).pathname
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML
type Doc = Record<string, any>

/** A namespaced object the user creates before applying, as the docs say, with the keys the docs give it. */
interface UserCreated {
  readonly kind: 'Secret' | 'ConfigMap'
  readonly namespace: string
  readonly name: string
  readonly keys: readonly string[]
  /** Where the docs say to create it, and the words they use (whitespace-insensitive). */
  readonly doc: string
  readonly says: string
}

const USER_CREATED: readonly UserCreated[] = [
  {
    kind: 'Secret',
    namespace: 'cert-manager',
    name: 'device-ca-key-pair',
    keys: ['tls.crt', 'tls.key'], // what `kubectl create secret tls` writes
    doc: 'docs/kubernetes.md',
    says: 'kubectl -n cert-manager create secret tls device-ca-key-pair --cert=ca.crt --key=ca.key',
  },
  {
    kind: 'ConfigMap',
    namespace: 'mqtt-registration-bridge',
    name: 'factory-ca',
    keys: ['ca.crt'],
    doc: 'docs/kubernetes.md',
    says: 'kubectl -n mqtt-registration-bridge create configmap factory-ca --from-file=ca.crt=factory-ca.pem',
  },
  {
    kind: 'Secret',
    namespace: 'mqtt-registration-bridge',
    name: 'mqtt-registration-bridge-state',
    keys: ['redis-url', 'postgres-url'],
    doc: 'docs/kubernetes.md',
    says: 'after you create the Secret `mqtt-registration-bridge-state` with `redis-url` and `postgres-url`',
  },
]

/** Secret keys cert-manager writes for a Certificate's spec.secretName. */
const CERTIFICATE_SECRET_KEYS = ['tls.crt', 'tls.key', 'ca.crt']
/** Where cert-manager looks for a ClusterIssuer's Secrets (its --cluster-resource-namespace default). */
const CLUSTER_RESOURCE_NAMESPACE = 'cert-manager'
const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']

/** A reference found in the render: what points, and at what. */
interface Reference {
  readonly from: string
  readonly kind: string
  readonly name: string
  readonly namespace?: string | undefined
  readonly group?: string
  readonly key?: string | undefined
}

const groupOf = (doc: Doc): string =>
  String(doc.apiVersion).includes('/') ? doc.apiVersion.split('/')[0] : ''
const label = (d: Doc) => `${d.kind}/${d.metadata.name}`

/** issuerReferences: a Certificate's or CertificateRequest's issuerRef (cert-manager's defaults filled in). */
function issuerReferences(docs: readonly Doc[]): Reference[] {
  return docs
    .filter((d) => d.spec?.issuerRef !== undefined)
    .map((d) => ({
      from: `${label(d)} spec.issuerRef`,
      kind: d.spec.issuerRef.kind ?? 'Issuer',
      name: d.spec.issuerRef.name,
      group: d.spec.issuerRef.group ?? 'cert-manager.io',
      namespace: (d.spec.issuerRef.kind ?? 'Issuer') === 'Issuer' ? d.metadata.namespace : undefined,
    }))
}

/** issuerSecretReferences: the CA key pair a CA Issuer or ClusterIssuer signs with. */
function issuerSecretReferences(docs: readonly Doc[]): Reference[] {
  return docs
    .filter((d) => ['Issuer', 'ClusterIssuer'].includes(d.kind) && d.spec?.ca?.secretName !== undefined)
    .map((d) => ({
      from: `${label(d)} spec.ca.secretName`,
      kind: 'Secret',
      name: d.spec.ca.secretName,
      namespace: d.kind === 'Issuer' ? d.metadata.namespace : CLUSTER_RESOURCE_NAMESPACE,
      key: 'tls.key',
    }))
}

/** podReferences: volumes, envFrom, env valueFrom, imagePullSecrets and the service account of every pod. */
function podReferences(docs: readonly Doc[]): Reference[] {
  const refs: Reference[] = []
  for (const d of docs.filter((d) => WORKLOADS.includes(d.kind))) {
    const pod = d.spec.template.spec
    const at = (from: string, kind: string, name: string, key?: string) =>
      refs.push({ from: `${label(d)} ${from}`, kind, name, namespace: d.metadata.namespace, key })
    for (const v of pod.volumes ?? []) {
      if (v.secret) at(`volume ${v.name}`, 'Secret', v.secret.secretName)
      if (v.configMap) at(`volume ${v.name}`, 'ConfigMap', v.configMap.name)
      for (const item of v.secret?.items ?? [])
        at(`volume ${v.name}`, 'Secret', v.secret.secretName, item.key)
      for (const item of v.configMap?.items ?? [])
        at(`volume ${v.name}`, 'ConfigMap', v.configMap.name, item.key)
      for (const s of v.projected?.sources ?? []) {
        if (s.secret) at(`volume ${v.name}`, 'Secret', s.secret.name)
        if (s.configMap) at(`volume ${v.name}`, 'ConfigMap', s.configMap.name)
      }
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const e of c.envFrom ?? []) {
        if (e.secretRef) at(`container ${c.name} envFrom`, 'Secret', e.secretRef.name)
        if (e.configMapRef) at(`container ${c.name} envFrom`, 'ConfigMap', e.configMapRef.name)
      }
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef
        const m = e.valueFrom?.configMapKeyRef
        if (s) at(`container ${c.name} env ${e.name}`, 'Secret', s.name, s.key)
        if (m) at(`container ${c.name} env ${e.name}`, 'ConfigMap', m.name, m.key)
      }
    }
    for (const s of pod.imagePullSecrets ?? []) at('imagePullSecrets', 'Secret', s.name)
    at('serviceAccountName', 'ServiceAccount', pod.serviceAccountName ?? 'default')
  }
  return refs
}

/** configReferences: the issuer the bridge's own configuration (bridge.yaml in a ConfigMap) asks. */
async function configReferences(docs: readonly Doc[]): Promise<Reference[]> {
  const refs: Reference[] = []
  for (const d of docs.filter((d) => d.kind === 'ConfigMap' && d.data?.['bridge.yaml'] !== undefined)) {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-references-'))
    await writeFile(join(dir, 'bridge.yaml'), d.data['bridge.yaml'])
    const config = loadConfig({ file: join(dir, 'bridge.yaml') })
    if (config.issuer.type !== 'cert-manager') continue
    const ref = config.issuer.certManager.issuerRef
    refs.push({
      from: `${label(d)} bridge.yaml issuer.certManager.issuerRef`,
      kind: ref.kind,
      name: ref.name ?? '',
      group: ref.group,
      namespace: ref.kind === 'Issuer' ? config.issuer.certManager.namespace : undefined,
    })
  }
  return refs
}

/** resolve says why a reference points at nothing, or undefined when it finds its object (and key). */
function resolve(ref: Reference, docs: readonly Doc[]): string | undefined {
  const same = (d: Doc) =>
    d.metadata.name === ref.name && (ref.namespace === undefined || d.metadata.namespace === ref.namespace)
  const rendered = docs.find(
    (d) => d.kind === ref.kind && same(d) && (ref.group === undefined || groupOf(d) === ref.group),
  )
  if (rendered) {
    const keys = Object.keys({ ...rendered.data, ...rendered.stringData, ...rendered.binaryData })
    if (ref.key !== undefined && !keys.includes(ref.key)) return `has no key ${ref.key}`
    return undefined
  }
  if (ref.kind === 'Secret') {
    const certificate = docs.find(
      (d) => d.kind === 'Certificate' && d.spec.secretName === ref.name && same(d),
    )
    if (certificate) {
      if (ref.key !== undefined && !CERTIFICATE_SECRET_KEYS.includes(ref.key)) return `has no key ${ref.key}`
      return undefined
    }
  }
  const user = USER_CREATED.find((u) => u.kind === ref.kind && u.name === ref.name)
  if (user && (ref.namespace === undefined || user.namespace === ref.namespace)) {
    if (ref.key !== undefined && !user.keys.includes(ref.key)) return `has no key ${ref.key} (${user.doc})`
    return undefined
  }
  const where = ref.namespace === undefined ? '' : ` in namespace ${ref.namespace}`
  return `no ${ref.group ? `${ref.group} ` : ''}${ref.kind}/${ref.name}${where} in the render, nor in the docs`
}

const kustomizations = async (): Promise<string[]> => {
  const overlays = await readdir(join(repo, 'deploy-overlays'), { withFileTypes: true })
  const dirs = ['deploy', ...overlays.filter((d) => d.isDirectory()).map((d) => `deploy-overlays/${d.name}`)]
  const found: string[] = []
  for (const dir of dirs) {
    const files = await readdir(join(repo, dir))
    if (files.includes('kustomization.yaml')) found.push(dir)
  }
  return found
}

const renders = new Map<string, Doc[]>()

beforeAll(async () => {
  for (const dir of await kustomizations()) {
    const rendered = await run('kubectl', ['kustomize', join(repo, dir)])
    expect(rendered.stderr, dir).toBe('')
    expect(rendered.code, dir).toBe(0)
    renders.set(
      dir,
      YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Doc),
    )
  }
})

describe('every kustomization: each reference by name resolves', () => {
  it('renders deploy/ and every overlay', () => {
    expect([...renders.keys()]).toEqual(expect.arrayContaining(['deploy', 'deploy-overlays/replicas']))
  })

  it('every issuerRef, the issuers’ CA Secrets, and the issuer in bridge.yaml resolve to an object of that kind', async () => {
    const unresolved: string[] = []
    for (const [dir, docs] of renders) {
      const refs = [
        ...issuerReferences(docs),
        ...issuerSecretReferences(docs),
        ...(await configReferences(docs)),
      ]
      expect(refs.length, dir).toBeGreaterThanOrEqual(3) // the bridge's Certificate, the CA Secret, bridge.yaml
      for (const ref of refs) {
        const why = resolve(ref, docs)
        if (why !== undefined) unresolved.push(`${dir}: ${ref.from}: ${why}`)
      }
    }
    expect(unresolved).toEqual([])
  })

  it('every Secret, ConfigMap and ServiceAccount a pod mounts or reads resolves, with the keys it reads', () => {
    const unresolved: string[] = []
    for (const [dir, docs] of renders) {
      const refs = podReferences(docs)
      expect(refs.length, dir).toBeGreaterThanOrEqual(4) // config, tls, factory-ca, the service account
      for (const ref of refs) {
        const why = resolve(ref, docs)
        if (why !== undefined) unresolved.push(`${dir}: ${ref.from}: ${why}`)
      }
    }
    expect(unresolved).toEqual([])
  })

  it('the objects the user creates are the ones the docs tell them to create, with those keys', async () => {
    for (const user of USER_CREATED) {
      const text = (await readFile(join(repo, user.doc), 'utf8')).replace(/\\\n/g, ' ').replace(/\s+/g, ' ')
      expect(text, `${user.doc} says how to create ${user.kind}/${user.name}`).toContain(user.says)
      for (const key of user.keys) {
        // kubectl create secret tls writes tls.crt and tls.key; the others name their keys
        if (!user.says.includes('secret tls')) expect(user.says).toContain(key)
      }
    }
  })

  it('finds a dangling reference (the check can fail)', () => {
    const docs = renders.get('deploy') ?? []
    const broken = docs.map((d) =>
      d.kind === 'Certificate'
        ? { ...d, spec: { ...d.spec, issuerRef: { ...d.spec.issuerRef, kind: 'Issuer' } } }
        : d,
    )
    const why = issuerReferences(broken).map((ref) => resolve(ref, broken))
    expect(why).toContain(
      'no cert-manager.io Issuer/device-ca in namespace mqtt-registration-bridge in the render, nor in the docs',
    )
  })
})
