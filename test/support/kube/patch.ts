import { errors } from './status.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** mergePatch applies an RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch
  const base: { [key: string]: Json } =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key]
    else base[key] = mergePatch(base[key] ?? null, value)
  }
  return base
}

const unescapePointer = (s: string): string => s.replaceAll('~1', '/').replaceAll('~0', '~')

/** jsonPatch applies an RFC 6902 JSON patch (add, remove, replace, test). */
export function jsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations)) throw errors.badRequest('a JSON patch must be an array of operations')
  const doc = structuredClone(target) as { [key: string]: Json }
  for (const op of operations as { op: string; path: string; value?: Json }[]) {
    const parts = op.path.split('/').slice(1).map(unescapePointer)
    const last = parts.pop() ?? ''
    let parent: Json = doc
    for (const part of parts) {
      parent = Array.isArray(parent)
        ? (parent[Number(part)] ?? null)
        : ((parent as Record<string, Json>)?.[part] ?? null)
      if (parent === null) throw errors.unprocessable(`${op.path}: path does not exist`)
    }
    const container = parent as Record<string, Json>
    switch (op.op) {
      case 'add':
        if (Array.isArray(container))
          container.splice(last === '-' ? container.length : Number(last), 0, op.value ?? null)
        else container[last] = op.value ?? null
        break
      case 'replace':
        container[last] = op.value ?? null
        break
      case 'remove':
        if (Array.isArray(container)) container.splice(Number(last), 1)
        else delete container[last]
        break
      case 'test':
        if (JSON.stringify(container[last]) !== JSON.stringify(op.value)) {
          throw errors.unprocessable(`${op.path}: test failed`)
        }
        break
      default:
        throw errors.badRequest(`unsupported JSON patch operation "${op.op}"`)
    }
  }
  return doc
}
