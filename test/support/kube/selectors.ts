import { errors } from './status.js'

type Labels = Readonly<Record<string, string>>
/** Selector tells whether an object's labels (or fields) match. */
export type Selector = (values: Labels) => boolean

/** parseLabelSelector understands =, ==, !=, in, notin, exists and !exists, joined by commas. */
export function parseLabelSelector(text: string | null): Selector {
  if (!text) return () => true
  const terms: Selector[] = []
  for (const raw of text.match(/([^,(]+(\([^)]*\))?)/g) ?? []) terms.push(parseTerm(raw.trim()))
  return (labels) => terms.every((t) => t(labels))
}

/** parseFieldSelector understands metadata.name and metadata.namespace with = and !=. */
export function parseFieldSelector(text: string | null): Selector {
  if (!text) return () => true
  const terms = text.split(',').map((term) => {
    const m = term.trim().match(/^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/)
    if (!m)
      throw errors.badRequest(
        `"${term}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
      )
    const [, field = '', op, value] = m
    return op === '!=' ? (f: Labels) => f[field] !== value : (f: Labels) => f[field] === value
  })
  return (fields) => terms.every((t) => t(fields))
}

function parseTerm(term: string): Selector {
  const equality = term.match(/^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/)
  if (equality) {
    const [, key = '', op, value] = equality
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value
  }
  const set = term.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/)
  if (set) {
    const [, key = '', op, list = ''] = set
    const values = list.split(',').map((v) => v.trim())
    return op === 'in'
      ? (l) => key in l && values.includes(l[key] ?? '')
      : (l) => !(key in l) || !values.includes(l[key] ?? '')
  }
  const exists = term.match(/^(!?)([\w./-]+)$/)
  if (exists) {
    const [, not, key = ''] = exists
    return not ? (l) => !(key in l) : (l) => key in l
  }
  throw errors.badRequest(`unable to parse requirement: ${term}`)
}
