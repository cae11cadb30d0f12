import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Certificate, ClusterIssuer, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1'
import { CertificateRequestPolicy } from '@kubernetes-models/cert-manager/policy.cert-manager.io/v1alpha1'
import { beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { run } from '../support/tools.js'

const repo = new URL('../../', import.meta.url).pathname
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML
type Doc = Record<string, any>
let docs: Doc[]
const find = (kind: string, name?: string): Doc => {
  const doc = docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name))
  if (!doc) throw new Error(`no ${kind} ${name ?? ''} in the rendered base`)
  return doc
}

beforeAll(async () => {
  const rendered = await run('kubectl', ['kustomize', join(repo, 'deploy')])
  expect(rendered.stderr).toBe('')
  docs = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Doc)
})

describe('deploy/: the kustomize base renders offline with kubectl', () => {
  it('has every piece, in one namespace (cluster-scoped: the ClusterIssuer and its read-only RBAC)', () => {
    const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()
    expect(kinds).toEqual(
      [
        'Certificate/mqtt-registration-bridge-tls',
        'ConfigMap/mqtt-registration-bridge',
        'ConfigMap/mqtt-registration-bridge-dashboard',
        'NetworkPolicy/mqtt-registration-bridge',
        'PodDisruptionBudget/mqtt-registration-bridge',
        'Service/mqtt-registration-bridge-external',
        'Service/mqtt-registration-bridge-metrics',
        'ServiceMonitor/mqtt-registration-bridge',
        'PrometheusRule/mqtt-registration-bridge',
        'Deployment/mqtt-registration-bridge',
        'ClusterIssuer/device-ca',
        'ClusterRole/mqtt-registration-bridge-issuer',
        'ClusterRoleBinding/mqtt-registration-bridge-issuer',
        'Namespace/mqtt-registration-bridge',
        'Role/mqtt-registration-bridge',
        'RoleBinding/mqtt-registration-bridge',
        'Service/mqtt-registration-bridge',
        'ServiceAccount/mqtt-registration-bridge',
      ].sort(),
    )
    for (const d of docs.filter(
      (d) => !['Namespace', 'ClusterIssuer', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind),
    ))
      expect(d.metadata.namespace).toBe('mqtt-registration-bridge')
  })

  it('grants least privilege', () => {
    // the verbs themselves are recorded from the bridge's requests in cert-manager-cluster.test.ts
    expect(
      find('Role')
        .rules.flatMap((r: Doc) => r.resources)
        .sort(),
    ).toEqual(['certificaterequests', 'certificates', 'secrets'].sort())
    expect(find('ClusterRole').rules).toEqual([
      {
        apiGroups: ['cert-manager.io'],
        resources: ['clusterissuers'],
        resourceNames: [find('ClusterIssuer').metadata.name],
        verbs: ['list', 'watch'],
      },
    ])
    // the CA key is not in the namespace whose Secrets the bridge may list and delete
    expect(find('ClusterIssuer').spec.ca.secretName).toBeDefined()
    expect(find('RoleBinding').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'mqtt-registration-bridge', namespace: 'mqtt-registration-bridge' },
    ])
  })

  it('cert-manager objects validate against cert-manager’s published schema', () => {
    expect(() => new Certificate(find('Certificate') as never).validate()).not.toThrow()
    expect(() => new ClusterIssuer(find('ClusterIssuer') as never).validate()).not.toThrow()
  })

  it('the ConfigMap holds a valid configuration whose paths, ports and issuer agree with the Deployment', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises')
    const dir = await mkdtemp(join((await import('node:os')).tmpdir(), 'mrb-deploy-'))
    await writeFile(join(dir, 'bridge.yaml'), find('ConfigMap').data['bridge.yaml'])
    const config = loadConfig({ file: join(dir, 'bridge.yaml') })
    const pod = find('Deployment').spec.template.spec
    const container = pod.containers[0]
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Doc) => [m.name, m.mountPath]))
    expect(container.args).toEqual(['serve', '--config', `${mounts.config}/bridge.yaml`])
    expect(config.tls.certFile).toBe(`${mounts.tls}/tls.crt`)
    expect(config.tls.keyFile).toBe(`${mounts.tls}/tls.key`)
    expect(config.tls.clientCaFile).toBe(`${mounts['factory-ca']}/ca.crt`)
    expect(config.stateDir).toBe(mounts.state)
    expect(pod.volumes.find((v: Doc) => v.name === 'tls').secret.secretName).toBe(
      find('Certificate').spec.secretName,
    )
    expect(container.ports).toEqual([
      { name: 'mqtts', containerPort: config.listen.port },
      { name: 'health', containerPort: config.health.port },
    ])
    expect(config.issuer.certManager.issuerRef).toEqual({
      name: find('ClusterIssuer').metadata.name,
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    })
    expect(config.issuer.certManager.namespace).toBe('mqtt-registration-bridge')
    expect(find('Service', 'mqtt-registration-bridge').spec.ports).toEqual([
      { name: 'mqtts', port: 8883, targetPort: 'mqtts' },
    ])
  })

  it('runs as non-root with a read-only root filesystem, probes and resources', () => {
    const pod = find('Deployment').spec.template.spec
    const container = pod.containers[0]
    expect(pod.securityContext.runAsNonRoot).toBe(true)
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    })
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' })
    expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'health' })
    expect(container.resources.requests).toBeDefined()
    expect(pod.serviceAccountName).toBe(find('ServiceAccount').metadata.name)
  })
})

describe('Dockerfile and docker-compose.yml agree with the code', () => {
  it('the image builds on a current Node LTS, runs the CLI as non-root and exposes the default ports', async () => {
    const dockerfile = await readFile(join(repo, 'Dockerfile'), 'utf8')
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])
    expect(froms.length).toBeGreaterThanOrEqual(2) // multi-stage
    for (const from of froms) expect(from).toMatch(/^node:(22|24)-/)
    const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'))
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "${pkg.bin['registration-bridge']}"]`)
    expect(dockerfile).toMatch(/^USER 1000/m)
    const defaults = loadConfig({})
    expect(dockerfile).toContain(`EXPOSE ${defaults.listen.port} ${defaults.health.port}`)
  })

  it('compose runs the bridge and a mosquitto that trusts the issuing CA from the shared state volume', async () => {
    const compose = YAML.parse(await readFile(join(repo, 'docker-compose.yml'), 'utf8')) as Doc
    const bridge = compose.services.bridge
    const mosquitto = compose.services.mosquitto
    const [command, ...flags] = bridge.command as string[]
    expect(command).toBe('serve')
    const stateDir = flags[flags.indexOf('--state-dir') + 1]
    const sets = flags.flatMap((f, i) => (flags[i - 1] === '--set' ? [f] : []))
    const config = loadConfig({ sets: [`stateDir=${stateDir}`, ...sets] })
    expect(config.usesDevPki).toBe(true)
    expect(bridge.volumes).toContain(`state:${stateDir}`)
    expect(mosquitto.volumes).toContain(`state:${stateDir}:ro`)
    expect(bridge.ports).toEqual([
      `${config.listen.port}:${config.listen.port}`,
      `${config.health.port}:${config.health.port}`,
    ])
    expect(bridge.healthcheck.test.join(' ')).toContain(`:${config.health.port}/readyz`)
    const [hostConf, containerConf] = (mosquitto.volumes as string[])[0]?.split(':') ?? []
    expect(containerConf).toBe('/mosquitto/config/mosquitto.conf')
    const conf = await readFile(join(repo, hostConf ?? ''), 'utf8')
    const setting = (key: string) => new RegExp(`^${key} (.+)$`, 'm').exec(conf)?.[1]
    expect(setting('cafile')).toBe(join(stateDir ?? '', 'pki', DEV_PKI_FILES.issuingCaCert))
    expect(setting('certfile')).toBe(join(stateDir ?? '', 'pki', DEV_PKI_FILES.serverCert))
    expect(setting('keyfile')).toBe(join(stateDir ?? '', 'pki', DEV_PKI_FILES.serverKey))
    expect(setting('require_certificate')).toBe('true')
    expect(mosquitto.ports).toEqual([`${setting('listener')}:${setting('listener')}`])
    expect(config.production.url).toBe(`mqtts://localhost:${setting('listener')}`)
  })

  it('the approver-policy example approves exactly what the bridge asks for: non-CA, its usages, its duration', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises')
    const dir = await mkdtemp(join((await import('node:os')).tmpdir(), 'mrb-deploy-'))
    await writeFile(join(dir, 'bridge.yaml'), find('ConfigMap').data['bridge.yaml'])
    const config = loadConfig({ file: join(dir, 'bridge.yaml') })
    const { ALLOWED_USAGES } = await import('../../src/issuers/cert-manager/csr-usages.js')
    const examples = YAML.parseAllDocuments(
      await readFile(join(repo, 'deploy/examples/approver-policy.yaml'), 'utf8'),
    ).map((d) => d.toJS() as Doc)
    const policy = examples.find((d) => d.kind === 'CertificateRequestPolicy') as Doc
    expect(() => new CertificateRequestPolicy(policy as never).validate()).not.toThrow()
    expect(policy.spec.allowed.isCA).toBe(false)
    expect([...policy.spec.allowed.usages].sort()).toEqual([...ALLOWED_USAGES].sort())
    expect(policy.spec.constraints.maxDuration).toBe(`${config.certificate.validityHours}h`)
    expect(policy.spec.selector.issuerRef).toEqual(config.issuer.certManager.issuerRef)
    const role = examples.find((d) => d.kind === 'Role') as Doc
    expect(role.rules).toEqual([
      {
        apiGroups: ['policy.cert-manager.io'],
        resources: ['certificaterequestpolicies'],
        verbs: ['use'],
        resourceNames: [policy.metadata.name],
      },
    ])
  })

  it('the Vault example grants cert-manager serviceaccounts/token create for the bridge account only', async () => {
    const examples = YAML.parseAllDocuments(
      await readFile(join(repo, 'deploy/examples/vault-issuer.yaml'), 'utf8'),
    ).map((d) => d.toJS() as Doc)
    const issuer = examples.find((d) => d.kind === 'Issuer') as Doc
    expect(() => new Issuer(issuer as never).validate()).not.toThrow()
    const account = issuer.spec.vault.auth.kubernetes.serviceAccountRef.name
    expect((examples.find((d) => d.kind === 'Role') as Doc).rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: [account], verbs: ['create'] },
    ])
    expect((examples.find((d) => d.kind === 'RoleBinding') as Doc).subjects).toEqual([
      { kind: 'ServiceAccount', name: 'cert-manager', namespace: 'cert-manager' },
    ])
  })
})
