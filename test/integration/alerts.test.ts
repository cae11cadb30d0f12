import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { run } from '../support/tools.js'

/**
 * The alert rules ship as deploy/prometheusrule.yaml. Its spec, taken from the rendered base, is checked with
 * `promtool check rules` and unit-tested with `promtool test rules`: each alert fires on the series that should
 * fire it, and not on the ones that should not. promtool comes from Debian's `prometheus` package
 * (scripts/install-test-tools.sh); when it is missing, run() fails the test, it never skips.
 */
const repo = new URL('../../', import.meta.url).pathname
const P = 'mqtt_registration_bridge_'
const DAY = 86_400
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML
type Doc = Record<string, any>
interface Rule {
  alert: string
  expr: string
  labels: Record<string, string>
  annotations: Record<string, string>
}

let docs: Doc[]
let rules: Rule[]
let dir: string
let job: string

beforeAll(async () => {
  const rendered = await run('kubectl', ['kustomize', join(repo, 'deploy')])
  expect(rendered.code).toBe(0)
  docs = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Doc)
  const rule = docs.find((d) => d.kind === 'PrometheusRule') as Doc
  rules = rule.spec.groups.flatMap((g: Doc) => g.rules)
  dir = await mkdtemp(join(tmpdir(), 'mrb-alerts-'))
  await writeFile(join(dir, 'rules.yml'), YAML.stringify(rule.spec))
  job =
    /up\{job="([^"]+)"\}/.exec(rules.find((r) => r.alert === 'RegistrationBridgeDown')?.expr ?? '')?.[1] ?? ''
})

/** A series in promtool's notation: `name{labels}` and its values, one a minute ('_' missing, 'a+bxn'). */
const series = (name: string, labels: Record<string, string>, values: string) => ({
  series: `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`,
  values,
})

/** One promtool test: input series, then at each time which alerts (by their labels) fire. */
interface Case {
  readonly name: string
  readonly input: ReturnType<typeof series>[]
  readonly expect: { at: string; alert: string; firing: Record<string, string>[] }[]
}

const pod = (instance: string) => ({ job: 'mqtt-registration-bridge-metrics', instance })
const A = pod('10.0.0.1:8080')
const B = pod('10.0.0.2:8080')
const reg = (outcome: string, code: string) => ({
  ...A,
  outcome,
  code,
  mode: 'csr',
  issuer: 'local-ca',
  via: 'device',
})
const HANDSHAKES = `${P}tls_handshake_failures_total`

const CASES: Case[] = [
  {
    name: 'a bridge that stops answering scrapes is down after 5 minutes',
    input: [series('up', A, '1 1 1 0x10'), series('up', B, '1x13')],
    expect: [
      { at: '7m', alert: 'RegistrationBridgeDown', firing: [] },
      { at: '9m', alert: 'RegistrationBridgeDown', firing: [A] },
      { at: '9m', alert: 'RegistrationBridgeAbsent', firing: [] },
    ],
  },
  {
    name: 'no bridge scraped at all is absent after 5 minutes',
    input: [series('up', { job: 'something-else', instance: 'x' }, '1x15')],
    expect: [
      { at: '4m', alert: 'RegistrationBridgeAbsent', firing: [] },
      { at: '10m', alert: 'RegistrationBridgeAbsent', firing: [{ job: 'mqtt-registration-bridge-metrics' }] },
      { at: '10m', alert: 'RegistrationBridgeDown', firing: [] },
    ],
  },
  {
    name: 'under 14 days left for an hour warns; 15 days (cert-manager renews then) does not',
    input: [
      series(
        `${P}certificate_expiry_timestamp_seconds`,
        { ...A, certificate: 'listener' },
        `${13 * DAY}x200`,
      ),
      series(
        `${P}certificate_expiry_timestamp_seconds`,
        { ...A, certificate: 'issuing_ca' },
        `${15 * DAY}x200`,
      ),
    ],
    expect: [
      { at: '30m', alert: 'RegistrationBridgeCaExpiringSoon', firing: [] },
      { at: '2h', alert: 'RegistrationBridgeCaExpiringSoon', firing: [{ ...A, certificate: 'listener' }] },
      { at: '2h', alert: 'RegistrationBridgeCertificateExpired', firing: [] },
    ],
  },
  {
    name: 'an expired certificate is critical at once',
    input: [
      series(`${P}certificate_expiry_timestamp_seconds`, { ...A, certificate: 'listener' }, '3600x200'),
    ],
    expect: [
      { at: '30m', alert: 'RegistrationBridgeCertificateExpired', firing: [] },
      {
        at: '2h',
        alert: 'RegistrationBridgeCertificateExpired',
        firing: [{ ...A, certificate: 'listener' }],
      },
    ],
  },
  {
    name: 'not ready for 5 minutes straight, and only that bridge',
    input: [series(`${P}ready`, A, '1 1 0x15'), series(`${P}ready`, B, '1 0 1 0 1 0 1 0 1 0 1 0 1 0 1')],
    expect: [
      { at: '5m', alert: 'RegistrationBridgeNotReady', firing: [] },
      { at: '10m', alert: 'RegistrationBridgeNotReady', firing: [A] },
    ],
  },
  {
    name: 'over 5% failing for the bridge’s or issuer’s reasons for 10 minutes',
    input: [
      series(`${P}registrations_total`, reg('issued', ''), '0+10x40'),
      series(`${P}registrations_total`, reg('rejected', 'ISSUER_UNAVAILABLE'), '0+1x40'),
    ],
    expect: [
      { at: '5m', alert: 'RegistrationBridgeErrorRate', firing: [] },
      { at: '30m', alert: 'RegistrationBridgeErrorRate', firing: [{}] },
    ],
  },
  {
    name: 'devices’ own errors, and 1% of the bridge’s, do not page',
    input: [
      series(`${P}registrations_total`, reg('issued', ''), '0+100x40'),
      series(`${P}registrations_total`, reg('rejected', 'RATE_LIMITED'), '0+50x40'),
      series(`${P}registrations_total`, reg('rejected', 'NOT_AUTHORIZED'), '0+50x40'),
      series(`${P}registrations_total`, reg('rejected', 'INTERNAL_ERROR'), '0+2x40'),
    ],
    expect: [{ at: '30m', alert: 'RegistrationBridgeErrorRate', firing: [] }],
  },
  {
    name: 'a registration hook that cannot be asked counts among the bridge’s failures',
    input: [
      series(`${P}registrations_total`, reg('issued', ''), '0+10x40'),
      series(`${P}registrations_total`, reg('rejected', 'HOOK_UNAVAILABLE'), '0+1x40'),
      series(`${P}registrations_total`, reg('rejected', 'REGISTRATION_DENIED'), '0+5x40'),
    ],
    expect: [{ at: '30m', alert: 'RegistrationBridgeErrorRate', firing: [{}] }],
  },
  {
    name: 'hook calls timing out for 10 minutes warn, not before',
    input: [
      series(`${P}hook_calls_total`, { ...A, result: 'allow' }, '0+10x40'),
      series(`${P}hook_calls_total`, { ...A, result: 'timeout' }, '0x10 0+2x30'),
    ],
    expect: [
      { at: '15m', alert: 'RegistrationBridgeHookFailing', firing: [] },
      { at: '30m', alert: 'RegistrationBridgeHookFailing', firing: [{}] },
    ],
  },
  {
    name: 'denies and a stray hook failure do not',
    input: [
      series(`${P}hook_calls_total`, { ...A, result: 'allow' }, '0+10x40'),
      series(`${P}hook_calls_total`, { ...A, result: 'deny' }, '0+10x40'),
      series(`${P}hook_calls_total`, { ...A, result: 'error' }, '0x20 1x20'),
    ],
    expect: [{ at: '35m', alert: 'RegistrationBridgeHookFailing', firing: [] }],
  },
  {
    name: 'a handshake spike on a new install (no day of history) fires after 15 minutes',
    input: [series(HANDSHAKES, A, '0x30 0+30x40')],
    expect: [
      { at: '35m', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [] },
      { at: '60m', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [{}] },
    ],
  },
  {
    name: 'a trickle of handshake failures on a new install does not',
    input: [series(HANDSHAKES, A, '0+3x90')],
    expect: [{ at: '80m', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [] }],
  },
  {
    name: 'after two days, a steady rate of handshake failures does not fire',
    input: [series(HANDSHAKES, A, '0+30x3000')],
    expect: [{ at: '48h40m', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [] }],
  },
  {
    name: 'after a quiet day, a spike over the same hours a day earlier fires',
    input: [series(HANDSHAKES, A, `0+3x2900 ${2900 * 3 + 60}+60x60`)],
    expect: [
      { at: '48h', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [] },
      { at: '48h40m', alert: 'RegistrationBridgeHandshakeFailuresSpiking', firing: [{}] },
    ],
  },
  {
    name: 'the first refused reload fires, from a counter that starts at 0; one born at 1 would be missed',
    input: [
      series(`${P}tls_reloads_total`, { ...A, material: 'listener', result: 'refused' }, '0 0 0 1x20'),
      series(`${P}tls_reloads_total`, { ...A, material: 'factory_ca', result: 'refused' }, '_ _ _ 1x20'),
      series(`${P}tls_reloads_total`, { ...A, material: 'listener', result: 'ok' }, '0 0 1 2x20'),
    ],
    expect: [
      { at: '2m', alert: 'RegistrationBridgeTlsReloadRefused', firing: [] },
      {
        at: '5m',
        alert: 'RegistrationBridgeTlsReloadRefused',
        firing: [{ ...A, material: 'listener', result: 'refused' }],
      },
      { at: '20m', alert: 'RegistrationBridgeTlsReloadRefused', firing: [] },
    ],
  },
]

/** promtoolTests writes CASES as a promtool unit-test file over rules.yml; `mutate` spoils one to see it fail. */
async function promtoolTests(cases: readonly Case[]): Promise<string> {
  const rule = (alert: string) => rules.find((r) => r.alert === alert) as Rule
  const file = {
    rule_files: ['rules.yml'],
    evaluation_interval: '1m',
    tests: cases.map((c) => ({
      name: c.name,
      interval: '1m',
      input_series: c.input,
      alert_rule_test: c.expect.map((e) => ({
        eval_time: e.at,
        alertname: e.alert,
        exp_alerts: e.firing.map((labels) => ({
          exp_labels: { ...rule(e.alert).labels, ...labels },
          exp_annotations: rule(e.alert).annotations,
        })),
      })),
    })),
  }
  const path = join(dir, `tests-${cases.length}-${Math.random().toString(36).slice(2)}.yml`)
  await writeFile(path, YAML.stringify(file))
  return path
}

describe('deploy/prometheusrule.yaml', () => {
  it('promtool check rules: valid, every alert with a severity and a summary', async () => {
    const checked = await run('promtool', ['check', 'rules', join(dir, 'rules.yml')])
    expect(checked.stdout + checked.stderr).toContain(`SUCCESS: ${rules.length} rules found`)
    expect(checked.code).toBe(0)
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity)
      expect(r.annotations.summary, r.alert).toBeTruthy()
    }
  })

  it('promtool test rules: each alert fires on the series that should fire it, and not otherwise', async () => {
    for (const r of rules) {
      const all = CASES.flatMap((c) => c.expect.filter((e) => e.alert === r.alert))
      expect(
        all.some((e) => e.firing.length > 0),
        `${r.alert} is shown firing`,
      ).toBe(true)
      expect(
        all.some((e) => e.firing.length === 0),
        `${r.alert} is shown quiet`,
      ).toBe(true)
    }
    const tested = await run('promtool', ['test', 'rules', await promtoolTests(CASES)], { cwd: dir })
    expect(tested.stdout + tested.stderr).toContain('SUCCESS')
    expect(tested.code).toBe(0)
  })

  it('promtool test rules fails when an expectation is wrong (the harness can fail)', async () => {
    const wrong: Case = {
      name: 'wrong on purpose',
      input: [series('up', A, '0x15')],
      expect: [{ at: '10m', alert: 'RegistrationBridgeDown', firing: [] }],
    }
    const tested = await run('promtool', ['test', 'rules', await promtoolTests([wrong])], { cwd: dir })
    expect(tested.code).not.toBe(0)
    expect(tested.stdout + tested.stderr).toContain('FAILED')
  })

  it('the down and absent rules name the job the ServiceMonitor makes (the Service it selects)', () => {
    const monitor = docs.find((d) => d.kind === 'ServiceMonitor') as Doc
    const selected = docs.filter(
      (d) =>
        d.kind === 'Service' &&
        Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => d.metadata.labels?.[k] === v),
    )
    expect(selected.map((s) => s.metadata.name)).toEqual([job])
    expect(rules.find((r) => r.alert === 'RegistrationBridgeAbsent')?.expr).toBe(`absent(up{job="${job}"})`)
  })

  it('the expiry warning starts after cert-manager should have renewed the listener (renewBefore)', () => {
    const certificate = docs.find((d) => d.kind === 'Certificate') as Doc
    const renewBeforeHours = Number(/^(\d+)h$/.exec(certificate.spec.renewBefore)?.[1])
    const expr = rules.find((r) => r.alert === 'RegistrationBridgeCaExpiringSoon')?.expr ?? ''
    const warnDays = Number(/< (\d+) \* 86400$/.exec(expr)?.[1])
    expect(warnDays).toBeGreaterThan(0)
    expect(warnDays * 24).toBeLessThan(renewBeforeHours)
  })
})

describe('docs/operations.md points at the PrometheusRule and keeps no copy of the rules', () => {
  it('names every alert the rule file has, no other, shows no expression, and agrees on renewBefore', async () => {
    const ops = await readFile(join(repo, 'docs/operations.md'), 'utf8')
    const section = ops.slice(ops.indexOf('### Alerts'), ops.indexOf('\n## ', ops.indexOf('### Alerts')))
    expect(section).toContain('deploy/prometheusrule.yaml')
    expect(section).not.toMatch(/expr:/)
    const named = [...section.matchAll(/^\| `(RegistrationBridge\w+)` \|/gm)].map((m) => m[1])
    expect(named.sort()).toEqual(rules.map((r) => r.alert).sort())
    const certificate = docs.find((d) => d.kind === 'Certificate') as Doc
    expect(ops).toContain(`renewBefore: ${certificate.spec.renewBefore}`)
    expect(ops).not.toMatch(/2\/3 of its life/)
  })
})
