// The import-graph rule (docs/architecture.md, "Layers"): every arrow in src/ points down, src/ has no cycles.
// Run by `npm run lint`: node scripts/check-imports.mjs [src directory]; exits 1 and names each offending import.
//
// A file's room is the first entry below that names it: a folder ending in '/', a file, or a list of those (one
// room). A file may import its own room and the rooms of lower layers; rooms of one layer never import each other
// (state/ does not import registry/, broker/ does not import registration/); every file in src/ has a room.
// dependency-cruiser was the first choice: its last release for Node 20 (17.4.x) reads TypeScript only through
// typescript < 7 or swc, and this project has typescript 7, so the imports are read here instead.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

/** LAYERS, low to high; each with the reason for its place. */
export const LAYERS = [
  {
    name: 'common',
    rooms: [['common/', 'logger.ts']],
    why: 'generic mechanisms (token bucket, backoff, abortable wait, files, logger): know nothing of the domain',
  },
  {
    name: 'protocol',
    rooms: ['protocol/'],
    why: 'the wire (topics, messages, error codes) and the shared domain types (identity) every room speaks',
  },
  { name: 'pki', rooms: ['pki/'], why: 'certificates, keys, CSRs and CAs: pure crypto on protocol types' },
  {
    name: 'config',
    rooms: ['config/'],
    why: 'the validated Config and file watching: read by the rooms above, knows none of them',
  },
  {
    name: 'stores and issuers',
    rooms: ['state/', 'registry/', 'issuers/'],
    why: 'what processes share, what must survive, who signs: services the pipeline uses, independent of each other',
  },
  {
    name: 'rooms',
    rooms: ['broker/', 'registration/', 'cluster/'],
    why: 'the MQTT side, the registration pipeline and the worker cluster: neither imports another',
  },
  {
    name: 'observability',
    rooms: [['observability/', 'health.ts']],
    why: 'metrics and probes observe the rooms through their observer interfaces; no room imports them',
  },
  {
    name: 'composition root',
    rooms: ['app/', 'client/'],
    why: 'app/ reads Config once and hands each room its own options; client/ is the device library (protocol and pki only)',
  },
  {
    name: 'entry points',
    rooms: [['cli.ts', 'cli/', 'index.ts']],
    why: 'argv and the package exports: use everything below, nothing imports them',
  },
]

/** roomOf is the room and layer index of a path relative to src/ ('/'-separated), or undefined. */
export function roomOf(file, layers = LAYERS) {
  for (const [level, layer] of layers.entries()) {
    for (const room of layer.rooms) {
      const paths = [room].flat()
      if (paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)))
        return { room: paths.join(), level }
    }
  }
  return undefined
}

const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g

/** specifiersOf lists the module specifiers a source text imports or re-exports (comment lines skipped). */
export function specifiersOf(text) {
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n')
  return [...code.matchAll(SPECIFIER)].map((m) => m[1])
}

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort()
}

/** graphOf reads every .ts file under srcDir: file → the src files it imports (relative specifiers only). */
export function graphOf(srcDir) {
  const graph = new Map()
  const problems = []
  for (const file of sourceFiles(srcDir)) {
    const targets = []
    for (const spec of specifiersOf(readFileSync(join(srcDir, file), 'utf8'))) {
      if (!spec.startsWith('.')) continue
      const abs = resolve(srcDir, dirname(file), spec).replace(/\.js$/, '.ts')
      const target = relative(srcDir, abs).split('\\').join('/')
      if (!existsSync(abs) || target.startsWith('..'))
        problems.push(`${file}: cannot resolve '${spec}' in src/`)
      else targets.push(target)
    }
    graph.set(file, targets)
  }
  return { graph, problems }
}

/** cyclesOf lists the strongly connected components of more than one file (or a file importing itself). */
export function cyclesOf(graph) {
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const cycles = []
  let next = 0
  const visit = (v) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)))
    }
    if (low.get(v) !== index.get(v)) return
    const scc = []
    let w
    do {
      w = stack.pop()
      onStack.delete(w)
      scc.push(w)
    } while (w !== v)
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return cycles
}

/** violationsOf checks a graph against the layers: one line per offending file or import, and per cycle. */
export function violationsOf(graph, layers = LAYERS) {
  const out = []
  for (const [file, targets] of graph) {
    const from = roomOf(file, layers)
    if (!from) {
      out.push(`${file}: in no layer (add its folder or file to LAYERS in scripts/check-imports.mjs)`)
      continue
    }
    for (const target of targets) {
      const to = roomOf(target, layers)
      if (!to || to.room === from.room || to.level < from.level) continue
      const [a, b] = [layers[from.level].name, layers[to.level].name]
      const why = to.level === from.level ? `rooms of one layer (${a})` : `${a} imports higher ${b}`
      out.push(`${file} -> ${target}: ${why}`)
    }
  }
  for (const cycle of cyclesOf(graph)) out.push(`cycle: ${cycle.join(' -> ')}`)
  return out
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const srcDir = resolve(process.argv[2] ?? 'src')
  const { graph, problems } = graphOf(srcDir)
  const all = [...problems, ...violationsOf(graph)]
  for (const line of all) console.error(line)
  if (all.length > 0) {
    console.error(`import rule: ${all.length} violation(s) (docs/architecture.md, "Layers")`)
    process.exit(1)
  }
  console.log(`import rule: ${graph.size} files, every import points down, no cycles`)
}
