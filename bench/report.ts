import type { CertManagerResult } from './cert-manager.js'
import { type GatewayResult, gatewayMarkdown } from './gateway.js'
import type { IssuanceRow } from './issuance.js'
import type { CsrReaderRow } from './lib/csr-readers.js'
import type { MemoryResult } from './memory.js'
import type { RegistrationResult } from './registration.js'
import { type ScaleResult, scaleGoals, scaleMarkdown } from './scale.js'
import type { SustainedResult } from './sustained.js'

/** Results is everything one `npm run bench` measured. */
export interface Results {
  readonly machine: Record<string, string | number>
  readonly issuance?: {
    rows: IssuanceRow[]
    vsGeneric: number
    builders?: IssuanceRow[]
    readers?: CsrReaderRow[]
  }
  readonly registration?: RegistrationResult
  readonly scale?: ScaleResult
  readonly memory?: MemoryResult
  readonly certManager?: CertManagerResult
  readonly sustained?: SustainedResult
  readonly gateway?: GatewayResult
}

const COLORS: Record<string, string> = {
  'bridge server-key': '#1f6feb',
  'bridge csr': '#8957e5',
  'bridge csr-cbor': '#d2a8ff',
  aedes: '#2da44e',
  mosquitto: '#bf8700',
}

/** registrationChart draws registrations/s per concurrency, for the bridge and its peers, as an SVG bar chart. */
export function registrationChart(result: RegistrationResult): string {
  const series = Object.keys(COLORS)
  const label = (r: RegistrationResult['rows'][number]) =>
    r.target === 'bridge' ? `bridge ${r.mode}` : r.target
  const groups = [...new Set(result.rows.map((r) => r.concurrency))]
  const max = Math.max(...result.rows.map((r) => r.perSecond), 1)
  const width = 640
  const height = 300
  const left = 50
  const bottom = 250
  const groupWidth = (width - left - 20) / groups.length
  const barWidth = (groupWidth - 30) / series.length
  const bars = groups.flatMap((c, g) =>
    series.map((name, s) => {
      const row = result.rows.find((r) => r.concurrency === c && label(r) === name)
      const h = row ? (row.perSecond / max) * 200 : 0
      const x = left + g * groupWidth + 15 + s * barWidth
      return (
        `<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barWidth - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[name]}"><title>${name}, ${c} concurrent: ${row?.perSecond ?? 0}/s</title></rect>` +
        `<text x="${(x + barWidth / 2 - 2).toFixed(1)}" y="${(bottom - h - 4).toFixed(1)}" font-size="10" text-anchor="middle">${Math.round(row?.perSecond ?? 0)}</text>`
      )
    }),
  )
  const axis = groups.map(
    (c, g) =>
      `<text x="${(left + g * groupWidth + groupWidth / 2).toFixed(1)}" y="${bottom + 18}" font-size="12" text-anchor="middle">${c} concurrent</text>`,
  )
  const legend = series.map(
    (name, s) =>
      `<rect x="${left + s * 140}" y="272" width="12" height="12" fill="${COLORS[name]}"/><text x="${left + s * 140 + 16}" y="282" font-size="12">${name}</text>`,
  )
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    '<title>Registrations per second for the bridge, plain Aedes and mosquitto, by concurrency</title>',
    `<text x="${left}" y="20" font-size="14" font-weight="bold">Registrations per second, fresh mutual-TLS connection each (higher is better)</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${width - 10}" y2="${bottom}" stroke="#444"/>`,
    ...bars,
    ...axis,
    ...legend,
    '</svg>',
    '',
  ].join('\n')
}

const table = (head: string[], rows: (string | number)[][]): string =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')

interface Goal {
  readonly goal: string
  readonly measured: string
  readonly met: boolean
}

/** goals checks each goal of the benchmark issue against the measurements. */
export function goals(results: Results): Goal[] {
  const out: Goal[] = []
  const r = results.registration
  if (r) {
    const minAedes = Math.min(...r.ratios.map((x) => x.vsAedes))
    const minMosquitto = Math.min(...r.ratios.map((x) => x.vsMosquitto))
    out.push({
      goal: 'registration rate ≥ 0.9 × bare Aedes (every concurrency, both modes)',
      measured: `${minAedes} × at worst`,
      met: minAedes >= 0.9,
    })
    out.push({
      goal: 'registration rate ≥ 0.75 × mosquitto',
      measured: `${minMosquitto} × at worst`,
      met: minMosquitto >= 0.75,
    })
  }
  const i = results.issuance
  if (i) {
    const ec = i.rows.find((x) => x.implementation.startsWith('bridge') && x.caKey === 'ECDSA-P256')
    out.push({
      goal: '≥ 2,000 certificates/s on one core, ECDSA P-256 CA',
      measured: `${ec?.perSecond}/s`,
      met: (ec?.perSecond ?? 0) >= 2000,
    })
    out.push({
      goal: '≥ 8 × the generic builder (same node:crypto signing)',
      measured: `${i.vsGeneric} ×`,
      met: i.vsGeneric >= 8,
    })
    out.push({
      goal: 'no event-loop stall above 5 ms while issuing (p99)',
      measured: `${ec?.loopDelayP99Ms} ms`,
      met: (ec?.loopDelayP99Ms ?? 99) <= 5,
    })
  }
  const m = results.memory
  if (m) {
    const largest = m.rows.filter((x) => x.target === 'bridge').at(-1)
    const aedes = m.rows.filter((x) => x.target === 'aedes').at(-1)
    const after = m.after.find((x) => x.target === 'bridge')
    out.push({
      goal: '≤ 50 KB per idle connection',
      measured: `${largest?.perConnectionKb} KiB at ${largest?.connections} (plain Aedes: ${aedes?.perConnectionKb} KiB)`,
      met: (largest?.perConnectionKb ?? 99) * 1.024 <= 50,
    })
    out.push({
      goal: 'RSS back within 10% once they leave',
      measured: `${after?.ratio} × the starting RSS`,
      met: (after?.ratio ?? 9) <= 1.1,
    })
  }
  const c = results.certManager
  if (c) {
    const kinds = (watches: Record<string, number>) =>
      Object.entries(watches)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')
    const open = c.watchConnectionsOpen ?? {}
    out.push({
      goal: `cert-manager path: p99 added ≤ 50 ms at ${c.concurrent} concurrent`,
      measured: `${c.added.p99} ms (p50 ${c.added.p50} ms)${c.registration ? `; registration p99 ${c.registration.p99} ms, of it cert-manager's ${c.certManager?.p99} ms` : ''}${c.burst ? `; all ${c.concurrent} publishing in one instant: p99 ${c.burst.added.p99} ms` : ''}`,
      met: c.added.p99 <= 50 && c.failures === 0,
    })
    out.push({
      goal: '≤ 3 API writes per registration',
      measured: `${c.writesPerRegistration}`,
      met: c.writesPerRegistration <= 3,
    })
    out.push({
      goal: 'one watch connection per resource kind',
      measured: `opened: ${kinds(c.watchConnections)}; open at the end: ${kinds(open)}`,
      met: [...Object.values(c.watchConnections), ...Object.values(open)].every((v) => v === 1),
    })
  }
  out.push(...scaleGoals(results.scale))
  const s = results.sustained
  if (s) {
    // the first window holds the warm-up (JIT, first TLS contexts); a window with a handful of stragglers says nothing
    const typical = s.windows.slice(1).filter((w) => w.count >= (s.ratePerSecond * 10) / 2)
    const p99s = (typical.length ? typical : s.windows).map((w) => w.p99).sort((a, b) => a - b)
    const median = p99s[Math.floor(p99s.length / 2)] ?? 0
    const rss = s.rssMb.map((x) => x.rssMb)
    const half = Math.floor(rss.length / 2)
    const firstHalfMax = Math.max(...rss.slice(0, half))
    const secondHalfMax = Math.max(...rss.slice(half))
    out.push({
      goal: `sustained ${s.total} at ${s.ratePerSecond}/s: exactly one answer each`,
      measured: `${s.issued} issued, ${s.failures} failed, ${s.auditLines} audited`,
      met: s.issued === s.total && s.auditLines === s.total,
    })
    out.push({
      goal: 'sustained: p99 stays flat (full windows after the first)',
      measured: `window p99 from ${p99s[0]} to ${p99s.at(-1)} ms (median ${median})`,
      met: (p99s.at(-1) ?? 0) <= 2 * median,
    })
    out.push({
      goal: 'sustained: RSS does not grow',
      measured: `peak ${firstHalfMax} MiB in the first half, ${secondHalfMax} MiB in the second`,
      met: secondHalfMax <= firstHalfMax * 1.1,
    })
  }
  return out
}

const NOTES = [
  "**What limits the scale-out goals.** CPU per registration on shared state is the cost of what crosses the wire: 21 Redis commands (leases, limits, and Aedes' MQTT sessions, kept in Redis so that a persistent session and a queued reply follow a device to any replica; docs/architecture.md, *What goes through Redis, and why*) add about 1.7 ms to one process in memory, and PostgreSQL's 8 statements in 3 transactions about 2 ms more (the pg client's own work per round trip; SQLite in the process costs a fraction of it). Two workers add the cluster's own IPC and a second V8 heap on two cores shared with the load generator. The latency shared state adds at 16 concurrent is Redis' round trips (about 13 ms at the median) and, with PostgreSQL, its synchronous commit (fsync on) before every answer: SQLite groups the commits of one event-loop turn into one sync, PostgreSQL commits each registration's transaction on its own. Closing the gap means fewer round trips (sessions per process, or PostgreSQL statements pipelined into one), which docs/architecture.md weighs against the hand-offs they would break.",
  '',
  "**Sustained load.** The first two windows carry the new bridge's warm-up (V8 compiling the issuance path while 200 registrations a second arrive) and, in a full run, the machine still settling from the benchmarks before it (10,000 connections of the memory benchmark, the cert-manager emulation); their p99 varied between runs on one day from 0.1 to 1.2 s for the second window, and RSS ended 5–25% above its first-half peak (the reply cache holding keys for `replyCacheSeconds`, and V8 growing its heap lazily). Not yet analysed further.",
  '',
  "**Reading these numbers.** The load generator (TLS handshakes, MQTT.js) runs on the same two cores as the server under test, and a fresh mutual-TLS handshake dominates every registration; run-to-run noise here is \u00b115%, and this virtual machine's speed also varies between runs (the same issuance code measured 5,454 certificates/s on 2026-12-01 and 1,909/s in this run; plain Aedes' CPU time per registration varied from 2.2 to 3.2 ms between runs on one day), so compare servers within one run. What the bridge adds to a registration, beyond plain Aedes, is issuance and one durable record before the reply: the registry's commit (SQLite: the records of one event-loop turn in one transaction, then one fdatasync in the thread pool, so under load one sync serves many registrations); the audit line follows from the committed record with no sync of its own (until 2026-12-06 two O_DSYNC appends, an issued index and the audit line, came before it). The figure that does not depend on the load generator sharing the machine is the server's own CPU time per registration (section *Workers, replicas and server CPU per registration*), best read as a ratio to plain Aedes in the same run.",
  '',
  '**Memory.** Per idle connection the bridge needed less than plain Aedes on the same Node.js TLS listener in this run (about 40 KiB against 57 KiB at 10,000 connections); we have not analysed where the difference comes from (the bridge stores sessions through its own bounded persistence). After everyone leaves, neither process gives memory back within seconds (V8 collects lazily and the allocator keeps freed pages), and further connect-everyone cycles grow both alike: shared with plain Aedes, not a property of the bridge, and worth a heap-snapshot investigation.',
  '',
  "**cert-manager path.** Three parties share the two cores: the bridge, the load generator and the emulated API server with cert-manager (a worker thread). The emulated controller limits its API requests as client-go does with cert-manager's defaults (`--kube-api-qps 20`, `--kube-api-burst 50`): one token per request it sends (its Kubernetes and cert-manager clients each have their own bucket, as client-go gives each clientset), none for reads (they come from its informer cache), none for a reconcile with nothing to do. It sends about 8 requests per Certificate (5 to cert-manager.io, 3 for Secrets), so 100 at once take it about 23 s whatever the bridge does; the bench raises `registration.timeoutMs` to 120 s so that this is measured rather than timed out, and otherwise runs the bridge with its default API limits (50 QPS, burst 100), as the service account of deploy/ (its RBAC enforced). What the bridge adds is what the device waits beyond cert-manager's own Certificate-to-Ready time, in two halves measured on one clock across the threads: from the device's publish to the Certificate created at the API server (MQTT, the bridge's pipeline, its API client and the create's round trip), and from the Certificate Ready at the API server to the answer at the device (the watch events reaching the bridge, the reply, MQTT). API writes and watch connections are those the API server recorded for the bridge's service account.",
].join('\n')

/** markdown renders docs/benchmarks.md from the results. */
export function markdown(results: Results): string {
  const m = results.machine
  const out: string[] = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` on ${m.date}; the raw numbers are in [benchmarks.json](benchmarks.json). Every server runs in its own process on loopback; one load generator (Node.js, MQTT.js, the same code for every target) drives them all in the same run.`,
    '',
    `**Machine:** ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}; Node.js ${m.node}; ${m.mosquitto}. The load generator shares these ${m.cpus} cores with the server under test, so absolute rates are lower than on a dedicated server; the ratios between servers are the point.`,
    '',
  ]
  const verdicts = goals(results).map((g) => [g.goal, g.measured, g.met ? 'yes' : '**no**'])
  out.push('## Goals at a glance', '', table(['goal', 'measured', 'met'], verdicts), '', NOTES, '')
  if (results.registration) {
    const r = results.registration
    out.push(
      '## Registration throughput and latency',
      '',
      'A fresh mutual-TLS connection per registration (TLS handshake, CONNECT, SUBSCRIBE, PUBLISH, reply, disconnect), embedded CA, ECDSA P-256; `csr-cbor` is the CSR mode in CBOR (the `/cbor` topics, the CSR and the certificates as DER); `aws-csr` is the AWS fleet-provisioning flow (CreateCertificateFromCsr, then RegisterThing: two round trips, and the CRL of the embedded CA rewritten before each answer, holding the pending certificate and then releasing it). The peers are the same exchange against plain Aedes behind the same TLS listener with a trivial echo responder, and against mosquitto with an equivalent responder client; both reply with a payload the size of an issued reply.',
      '',
      '![registrations per second](benchmarks/registration.svg)',
      '',
    )
    out.push(
      table(
        ['server', 'mode', 'concurrent', 'registrations/s', 'p50 ms', 'p99 ms', 'failures'],
        r.rows.map((x) => [x.target, x.mode, x.concurrency, x.perSecond, x.p50, x.p99, x.failures]),
      ),
      '',
    )
    out.push(
      "Ratios of the bridge's rate to its peers' (goal: ≥ 0.9 × Aedes, ≥ 0.75 × mosquitto):",
      '',
      table(
        ['concurrent', 'bridge mode', '× Aedes', '× mosquitto'],
        r.ratios.map((x) => [x.concurrency, x.mode, x.vsAedes, x.vsMosquitto]),
      ),
      '',
    )
  }
  if (results.issuance) {
    const i = results.issuance
    out.push(
      '## Issuance alone',
      '',
      'Certificates per second on one core from CSRs: parse, verify the CSR signature, build and sign (the bridge path also checks the policy). Each issuance is its own task, as in the bridge; the event-loop delay p99 is measured meanwhile (goal: ≥ 2,000/s with an ECDSA P-256 CA, ≥ 8 × the generic builder, no stall above 5 ms).',
      '',
    )
    out.push(
      table(
        ['implementation', 'CA key', 'certificates/s', 'event-loop delay p99 ms', 'note'],
        i.rows.map((x) => [x.implementation, x.caKey, x.perSecond, x.loopDelayP99Ms ?? '—', x.note ?? '']),
      ),
      '',
    )
    if (i.builders && i.readers) {
      out.push(
        '### Like for like: the certificate builder, and the CSR reader',
        '',
        "The rows above differ in more than the builder (@peculiar/x509 signs through WebCrypto's asynchronous API; node-forge signs in JavaScript). To compare equal things, the two rows below build the same certificate (same profile, same extensions, same device key, same ECDSA P-256 CA) and sign it with the same synchronous `crypto.sign` call: the bridge's fast builder concatenates pre-encoded DER parts; the generic builder is the @peculiar/asn1-x509 object model and its DER serializer. Only the builder differs.",
        '',
        table(
          ['builder', 'CA key', 'certificates/s', 'event-loop delay p99 ms'],
          i.builders.map((x) => [x.implementation, x.caKey, x.perSecond, x.loopDelayP99Ms ?? '—']),
        ),
        '',
        `The fast builder builds and signs **${i.vsGeneric} ×** as many certificates per second as the generic builder, with the same node:crypto signature underneath.`,
        '',
        "Reading a P-256 CSR, per request: the bridge's strict DER reader (structure, key checks, canonical re-encoding of the key, signature) against @peculiar/asn1-csr's schema parser followed by the same signature check (and none of the strictness checks: the schema parser accepts 29 of the corpus's 35 malformed DER requests), and the signature check alone.",
        '',
        table(
          ['reader', 'µs per CSR'],
          i.readers.map((r) => [r.reader, r.microseconds]),
        ),
        '',
      )
    } else {
      out.push(
        `The bridge issues **${i.vsGeneric} ×** as many certificates per second as @peculiar/x509's generic builder with the same ECDSA P-256 CA.`,
        '',
      )
    }
  }
  if (results.memory) {
    const mem = results.memory
    out.push(
      '## Idle connection memory',
      '',
      'Resident memory of the server process with N idle mutual-TLS MQTT connections (keepalive 60 s), minus its resident memory before them (goal: ≤ 50 KB per connection; back within 10% after they leave).',
      '',
    )
    out.push(
      table(
        ['server', 'connections', 'RSS MiB', 'KiB per connection'],
        mem.rows.map((x) => [x.target, x.connections, Math.round(x.rssKb / 1024), x.perConnectionKb]),
      ),
      '',
    )
    const mib = (kb: number) => Math.round(kb / 1024)
    const afterRows = mem.after.map((x) => [
      x.target,
      mib(x.baselineKb),
      mib(x.peakKb),
      mib(x.afterKb),
      x.ratio,
      x.cyclesKb.map(mib).join(', '),
    ])
    const afterHead = [
      'server',
      'RSS before, MiB',
      'at the peak',
      '3 s after all left',
      'after / before',
      'after 3 more cycles of up to 2,000',
    ]
    out.push(table(afterHead, afterRows), '')
  }
  if (results.certManager) {
    const c = results.certManager
    out.push(
      '## cert-manager path',
      '',
      `${c.concurrent} registrations at once, ${c.rounds} measured rounds${c.arrivalMs ? ` (each round's devices publish one after another over ${c.arrivalMs} ms; cert-manager takes tens of seconds for them, so all are in flight together)` : ''}, through the Kubernetes API emulation and the emulated cert-manager (20 QPS, burst 50 per client, one token per API request), which signs ${c.issuanceDelayMs} ms after a request is approved. "Added" is the device's publish-to-answer time minus the time the emulated cert-manager took for that Certificate (created to Ready, its rate limit and the signing delay included): the bridge's own work plus its API and watch round trips (goal: p99 ≤ 50 ms, ≤ 3 writes per registration, one watch per kind).`,
      '',
    )
    const verbs = c.bridgeRequestsPerRegistration ?? {}
    out.push(
      table(
        [
          'registrations/s',
          'added p50 ms',
          'added p99 ms',
          'registration p99 ms',
          "cert-manager's p99 ms",
          'publish → Certificate created p50 / p99 ms',
          'Ready → answer p50 / p99 ms',
          'bridge API writes / registration',
          'bridge API requests / registration',
          'cert-manager API requests / registration',
          'failures',
        ],
        [
          [
            c.registrationsPerSecond,
            c.added.p50,
            c.added.p99,
            c.registration?.p99 ?? '',
            c.certManager?.p99 ?? '',
            c.toCreated ? `${c.toCreated.p50} / ${c.toCreated.p99}` : '',
            c.fromReady ? `${c.fromReady.p50} / ${c.fromReady.p99}` : '',
            c.writesPerRegistration,
            Object.entries(verbs)
              .map(([verb, n]) => `${verb} ${n}`)
              .join(', '),
            c.controllerRequestsPerRegistration ?? '',
            c.failures,
          ],
        ],
      ),
      '',
      table(
        ['resource', 'bridge watch connections opened', 'open at the end'],
        Object.entries(c.watchConnections).map(([kind, n]) => [
          kind,
          n,
          c.watchConnectionsOpen?.[kind] ?? '',
        ]),
      ),
      '',
    )
    if (c.burst && c.warmUp)
      out.push(
        `Not counted above: a round before them, the bridge's first (its connections to the API server opened, its code not yet optimised by V8), added p50 ${c.warmUp.p50} ms, p99 ${c.warmUp.p99} ms; and a round after them whose ${c.concurrent} devices all publish in the same instant added p50 ${c.burst.added.p50} ms, p99 ${c.burst.added.p99} ms (publish → Certificate created p50 ${c.burst.toCreated.p50}, p99 ${c.burst.toCreated.p99} ms): there the last device waits for the ${c.concurrent - 1} before it in every stage — the load generator's publishes, the bridge's pipeline, the API server's answers — on the two cores the three parties share.`,
        '',
      )
    if (c.apiServerCreateMs && c.apiServerLoopDelayMs)
      out.push(
        `The emulated API server answered the bridge's creates in ${c.apiServerCreateMs.p50} ms (p50), ${c.apiServerCreateMs.p99} ms (p99), from their arrival in its thread; that thread's event-loop delay (it runs the emulated cert-manager too) was ${c.apiServerLoopDelayMs.p50} ms p50, ${c.apiServerLoopDelayMs.p99} ms p99, ${c.apiServerLoopDelayMs.max} ms at most.`,
        '',
      )
  }
  if (results.sustained) {
    const s = results.sustained
    out.push(
      '## Sustained load',
      '',
      `${s.total} registrations at a steady ${s.ratePerSecond}/s (open loop), embedded CA, server-side keys. ${s.issued} issued, ${s.failures} failed, ${s.auditLines} audited (exactly one issuance each).`,
      '',
    )
    out.push(
      table(
        ['window start, s', 'registrations', 'p99 ms'],
        s.windows.map((w) => [w.second, w.count, w.p99]),
      ),
      '',
    )
    const first = s.rssMb[1]?.rssMb ?? 0
    const last = s.rssMb.at(-1)?.rssMb ?? 0
    out.push(
      `Bridge RSS: ${first} MiB after 1 s, ${last} MiB at the end (${s.rssMb.map((r) => r.rssMb).join(', ')}).`,
      '',
    )
  }
  if (results.gateway) out.push(...gatewayMarkdown(results.gateway, table))
  if (results.scale) out.push(...scaleMarkdown(results.scale, table))
  return `${out.join('\n')}\n`
}
