/** Scrape is one /metrics exposition, parsed: `sample` reads a series by name and exact labels. */
export interface Scrape {
  readonly text: string
  /** names of every metric family with a HELP line */
  readonly families: string[]
  /** sample is the value of the series with exactly these labels (undefined when absent). */
  sample(name: string, labels?: Record<string, string>): number | undefined
}

const key = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`

/** parseExposition reads the Prometheus text format (as prom-client writes it). */
export function parseExposition(text: string): Scrape {
  const series = new Map<string, number>()
  const families: string[] = []
  for (const line of text.split('\n')) {
    const help = /^# HELP (\S+)/.exec(line)
    if (help?.[1]) families.push(help[1])
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    if (!m?.[1] || m[3] === undefined) throw new Error(`unparsable exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = JSON.parse(`"${l[2]}"`)
    series.set(key(m[1], labels), Number(m[3]))
  }
  return { text, families, sample: (name, labels = {}) => series.get(key(name, labels)) }
}

/** scrapeMetrics fetches and parses a bridge's /metrics. */
export async function scrapeMetrics(healthPort: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${healthPort}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return parseExposition(await res.text())
}
