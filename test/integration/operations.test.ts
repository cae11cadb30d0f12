import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { type Scrape, scrapeMetrics } from '../support/metrics.js'
import { run } from '../support/tools.js'

const repo = new URL('../../', import.meta.url).pathname
const operationsDoc = readFileSync(join(repo, 'docs/operations.md'), 'utf8')
const dashboardText = readFileSync(join(repo, 'deploy/grafana-dashboard.json'), 'utf8')
const PREFIX = 'mqtt_registration_bridge_'
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML
type Doc = Record<string, any>

let bridge: TestBridge
let scrape: Scrape
/** every series name the bridge exports: families, and a histogram's _bucket, _sum and _count */
let seriesNames: Set<string>

beforeAll(async () => {
  bridge = await startTestBridge()
  scrape = await scrapeMetrics(bridge.bridge.healthPort as number)
  seriesNames = new Set(scrape.families)
  for (const m of scrape.text.matchAll(/^# TYPE (\S+) histogram$/gm))
    for (const suffix of ['_bucket', '_sum', '_count']) seriesNames.add(`${m[1]}${suffix}`)
})

afterAll(async () => {
  await bridge?.stop()
})

/** metricNamesIn finds the metric names a PromQL text uses (the bridge's and Node's process metrics). */
const metricNamesIn = (text: string): string[] => [
  ...new Set(
    [...text.matchAll(/\b((?:mqtt_registration_bridge|process|nodejs)_[a-z0-9_]+)/g)].map(
      (m) => m[1] as string,
    ),
  ),
]

describe('docs/operations.md documents exactly the metrics the bridge exports', () => {
  it('one table row per metric of the bridge, and no other', () => {
    const section = operationsDoc.split('\n## Metrics')[1]?.split('\n## ')[0] ?? ''
    const documented = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1])
    expect(documented.sort()).toEqual(scrape.families.filter((f) => f.startsWith(PREFIX)).sort())
  })

  it('with the type the bridge exports', () => {
    for (const m of scrape.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (!m[1]?.startsWith(PREFIX)) continue
      const row = operationsDoc.split('\n').find((l) => l.startsWith(`| \`${m[1]}\``)) ?? ''
      expect(row.split('|')[2]?.trim(), m[1]).toBe(m[2])
    }
  })

  it('every metric the alerts and the text name is exported', () => {
    const names = metricNamesIn(operationsDoc).filter((n) => !n.endsWith('_'))
    expect(names.length).toBeGreaterThan(10)
    for (const name of names) expect(seriesNames, name).toContain(name)
  })
})

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(dashboardText) as Doc
  const exprs: string[] = dashboard.panels.flatMap((p: Doc) => p.targets.map((t: Doc) => t.expr))
  exprs.push(...dashboard.templating.list.flatMap((v: Doc) => (v.type === 'query' ? [v.query] : [])))

  it('queries only metrics the bridge exports', () => {
    const names = metricNamesIn(exprs.join('\n'))
    expect(names.length).toBeGreaterThan(10)
    for (const name of names) expect(seriesNames, name).toContain(name)
  })

  it('shows registrations by outcome, latency quantiles, connections, errors by code and CA expiry', () => {
    const all = exprs.join('\n')
    expect(all).toContain(`sum by (outcome) (rate(${PREFIX}registrations_total`)
    expect(all).toContain(
      `histogram_quantile(0.99, sum by (le) (rate(${PREFIX}registration_duration_seconds_bucket`,
    )
    expect(all).toContain(`${PREFIX}connections_open`)
    expect(all).toContain('sum by (code)')
    expect(all).toContain(`${PREFIX}certificate_expiry_timestamp_seconds`)
  })
})

describe('deploy/ agrees with the code on ports, paths and labels', () => {
  let docs: Doc[]
  const find = (kind: string, name = 'mqtt-registration-bridge'): Doc => {
    const doc = docs.find((d) => d.kind === kind && d.metadata.name === name)
    if (!doc) throw new Error(`no ${kind} ${name} in the rendered base`)
    return doc
  }
  let config: ReturnType<typeof loadConfig>
  let pod: Doc
  const containerPort = (name: string): number =>
    pod.spec.containers[0].ports.find((p: Doc) => p.name === name)?.containerPort

  beforeAll(async () => {
    const rendered = await run('kubectl', ['kustomize', join(repo, 'deploy')])
    docs = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Doc)
    const dir = await mkdtemp(join(tmpdir(), 'mrb-ops-'))
    await writeFile(join(dir, 'bridge.yaml'), find('ConfigMap').data['bridge.yaml'])
    config = loadConfig({ file: join(dir, 'bridge.yaml') })
    pod = find('Deployment').spec.template
  })

  it('the ServiceMonitor scrapes /metrics on the health server’s port, through the metrics Service', async () => {
    const monitor = find('ServiceMonitor')
    const service = find('Service', 'mqtt-registration-bridge-metrics')
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels)
    expect(service.spec.selector).toEqual(find('Deployment').spec.selector.matchLabels)
    const [endpoint] = monitor.spec.endpoints
    const port = service.spec.ports.find((p: Doc) => p.name === endpoint.port)
    expect(containerPort(port.targetPort)).toBe(config.health.port)
    expect(config.health.metrics).toBe(true)
    const res = await fetch(`http://127.0.0.1:${bridge.bridge.healthPort}${endpoint.path}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain')
  })

  it('every metric the PrometheusRule’s alerts name is exported (alerts.test.ts runs them with promtool)', () => {
    const rule = docs.find((d) => d.kind === 'PrometheusRule') as Doc
    const exprs = rule.spec.groups.flatMap((g: Doc) => g.rules.map((r: Doc) => r.expr as string))
    const names = metricNamesIn(exprs.join('\n'))
    expect(names.length).toBeGreaterThanOrEqual(5)
    for (const name of names) expect(seriesNames, name).toContain(name)
  })

  it('the external Service is a LoadBalancer on the MQTT listener', () => {
    const external = find('Service', 'mqtt-registration-bridge-external')
    expect(external.spec.type).toBe('LoadBalancer')
    expect(external.spec.selector).toEqual(find('Deployment').spec.selector.matchLabels)
    const [port] = external.spec.ports
    expect(containerPort(port.targetPort)).toBe(config.listen.port)
  })

  it('the NetworkPolicy admits MQTT from anywhere and the health port from monitoring only', () => {
    const policy = find('NetworkPolicy')
    expect(pod.metadata.labels).toMatchObject(policy.spec.podSelector.matchLabels)
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress'])
    const [mqtt, metrics] = policy.spec.ingress
    expect(mqtt.from).toBeUndefined()
    expect(containerPort(mqtt.ports[0].port)).toBe(config.listen.port)
    expect(metrics.from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ])
    expect(containerPort(metrics.ports[0].port)).toBe(config.health.port)
    const egressPorts = policy.spec.egress.flatMap((e: Doc) => e.ports.map((p: Doc) => p.port))
    expect(egressPorts).toEqual(expect.arrayContaining([53, 443, 6443]))
  })

  it('the PodDisruptionBudget selects the bridge’s pods', () => {
    expect(pod.metadata.labels).toMatchObject(find('PodDisruptionBudget').spec.selector.matchLabels)
  })

  it('the Namespace enforces Pod Security restricted, and the pod meets it', () => {
    expect(find('Namespace').metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    })
    const spec = pod.spec
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    })
    for (const c of spec.containers) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      })
      expect(c.resources.requests.cpu).toBeDefined()
      expect(c.resources.requests.memory).toBeDefined()
      expect(c.resources.limits.memory).toBeDefined()
    }
  })

  it('ships the dashboard as a ConfigMap for Grafana’s sidecar', () => {
    const map = find('ConfigMap', 'mqtt-registration-bridge-dashboard')
    expect(map.metadata.labels).toEqual({ grafana_dashboard: '1' })
    expect(map.data['grafana-dashboard.json']).toBe(dashboardText)
  })
})
