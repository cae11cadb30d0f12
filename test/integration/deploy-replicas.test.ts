import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { run } from '../support/tools.js'

const repo = new URL('../../', import.meta.url).pathname
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML
type Doc = Record<string, any>
let docs: Doc[]
const find = (kind: string): Doc => {
  const doc = docs.find((d) => d.kind === kind)
  if (!doc) throw new Error(`no ${kind} in the rendered overlay`)
  return doc
}

beforeAll(async () => {
  const rendered = await run('kubectl', ['kustomize', join(repo, 'deploy-overlays/replicas')])
  expect(rendered.stderr).toBe('')
  docs = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Doc)
})

describe('deploy-overlays/replicas renders offline with kubectl', () => {
  it('runs two or more pods on different nodes, with the state URLs from a Secret', async () => {
    const deployment = find('Deployment')
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2)
    const pod = deployment.spec.template.spec
    const term = pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]
    expect(term.topologyKey).toBe('kubernetes.io/hostname')
    expect(term.labelSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels)
    const env = Object.fromEntries(pod.containers[0].env.map((e: Doc) => [e.name, e]))
    for (const name of ['MRB_STATE_REDIS_URL', 'MRB_STATE_POSTGRES_URL']) {
      expect(env[name].value).toBeUndefined() // never in the manifest
      expect(env[name].valueFrom.secretKeyRef.name).toBe('mqtt-registration-bridge-state')
    }
    // the settings those variables name exist, and the ConfigMap with them set is valid
    const dir = await mkdtemp(join(tmpdir(), 'mrb-replicas-'))
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.data?.['bridge.yaml'])
    await writeFile(join(dir, 'bridge.yaml'), configMap?.data['bridge.yaml'])
    const config = loadConfig({
      file: join(dir, 'bridge.yaml'),
      env: {
        MRB_STATE_REDIS_URL: 'redis://redis:6379',
        MRB_STATE_POSTGRES_URL: 'postgres://u:p@pg:5432/db',
        MRB_STATE_WORKERS: env.MRB_STATE_WORKERS.value,
      },
    })
    expect(config.state.redis.url).toBe('redis://redis:6379')
    expect(config.state.postgres.url).toBe('postgres://u:p@pg:5432/db')
    expect(config.state.workers).toBe(2)
  })

  it('keeps at least two pods through voluntary disruptions, and lets them reach Redis and PostgreSQL', () => {
    const pdb = find('PodDisruptionBudget')
    expect(pdb.spec).toEqual({
      minAvailable: 2,
      selector: { matchLabels: find('Deployment').spec.selector.matchLabels },
    })
    const ports = find('NetworkPolicy').spec.egress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port))
    expect(ports).toEqual(expect.arrayContaining([53, 443, 6379, 5432]))
  })
})

describe('docker-compose.yml, profile replicas', () => {
  it('two bridges behind haproxy, on Redis and PostgreSQL from official images, agree with the code', async () => {
    const compose = YAML.parse(await readFile(join(repo, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as Doc
    const s = compose.services
    const replicas = Object.keys(s).filter((n) => s[n].profiles?.includes('replicas'))
    expect(replicas.sort()).toEqual(['bridge-a', 'bridge-b', 'bridge-init', 'haproxy', 'postgres', 'redis'])
    expect(s.haproxy.image).toMatch(/^haproxy:\d/)
    expect(s.redis.image).toMatch(/^redis:\d/)
    expect(s.postgres.image).toMatch(/^postgres:\d/)
    const cfg = await readFile(join(repo, 'deploy/compose/haproxy.cfg'), 'utf8')
    const [hostCfg, containerCfg] = (s.haproxy.volumes[0] as string).split(':')
    expect(hostCfg).toBe('./deploy/compose/haproxy.cfg')
    expect(containerCfg).toBe('/usr/local/etc/haproxy/haproxy.cfg')
    expect(cfg).toMatch(/^\s*mode tcp$/m) // TLS passes through: the bridge reads the client certificate
    const bind = Number(/^\s*bind :(\d+)$/m.exec(cfg)?.[1])
    expect(s.haproxy.ports).toEqual([`9883:${bind}`])
    const servers = [...cfg.matchAll(/^\s*server (\S+) ([\w-]+):(\d+) check port (\d+)$/gm)]
    expect(servers.map((m) => m[2])).toEqual(['bridge-a', 'bridge-b'])
    for (const name of ['bridge-a', 'bridge-b']) {
      const bridge = s[name]
      const [command, ...flags] = bridge.command as string[]
      expect(command).toBe('serve')
      const sets = flags.flatMap((f, i) => (flags[i - 1] === '--set' ? [f] : []))
      const stateDir = flags[flags.indexOf('--state-dir') + 1]
      const config = loadConfig({ sets: [`stateDir=${stateDir}`, ...sets] })
      const server = servers.find((m) => m[2] === name)
      expect(Number(server?.[3])).toBe(config.listen.port)
      expect(Number(server?.[4])).toBe(config.health.port)
      expect(config.state.redis.url).toBe('redis://redis:6379')
      const pg = new URL(config.state.postgres.url ?? '')
      expect(pg.hostname).toBe('postgres')
      expect(pg.port).toBe('5432')
      expect(pg.username).toBe(s.postgres.environment.POSTGRES_USER)
      expect(pg.password).toBe(s.postgres.environment.POSTGRES_PASSWORD)
      expect(pg.pathname).toBe(`/${s.postgres.environment.POSTGRES_DB}`)
      // the same PKI (one CA, one server certificate), each its own audit log and issued index
      expect(bridge.volumes).toContain(`replicas-pki:${stateDir}`)
      expect(s['bridge-init'].volumes).toContain(`replicas-pki:${stateDir}`)
      expect(
        bridge.volumes.some((v: string) => v.endsWith(`:${config.auditLog.replace(/\/audit\.log$/, '')}`)),
      ).toBe(true)
      expect(Object.keys(bridge.depends_on).sort()).toEqual(['bridge-init', 'postgres', 'redis'])
    }
    expect(s['bridge-a'].volumes).not.toEqual(s['bridge-b'].volumes)
    expect(s.redis.command).toEqual(['redis-server', '--appendonly', 'yes'])
  })
})
