import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { prune } from './prune.js'
import { apiVersionOf, findResource, type ResourceType } from './resources.js'
import type { Selector } from './selectors.js'
import { errors } from './status.js'
import { validateObject } from './validate.js'

/** KubeObject is any stored object, as JSON. */
export type KubeObject = {
  apiVersion?: string
  kind?: string
  metadata: {
    name?: string
    generateName?: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    generation?: number
    creationTimestamp?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    ownerReferences?: { uid: string; name: string; kind: string; apiVersion: string; controller?: boolean }[]
    [key: string]: unknown
  }
  spec?: unknown
  status?: unknown
  [key: string]: unknown
}

/** WatchEvent is one change, as the watch API sends it. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'
  readonly object: KubeObject
  readonly previous?: KubeObject
  readonly resource: ResourceType
  readonly rv: number
}

const NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/**
 * ObjectStore is the emulated etcd + registry: one global resourceVersion, uids, generations, a status
 * subresource, owner-reference garbage collection, and a bounded event history for watch replay.
 */
export class ObjectStore extends EventEmitter<{ event: [WatchEvent] }> {
  #rv = 1
  readonly #objects = new Map<ResourceType, Map<string, KubeObject>>()
  #history: WatchEvent[] = []
  historyLimit = 1000

  constructor() {
    super()
    this.setMaxListeners(0) // one listener per watch connection and waiter, like the API server's watch cache
  }

  /** resourceVersion is the current global resourceVersion. */
  get resourceVersion(): number {
    return this.#rv
  }

  /** oldestReplayable is the oldest resourceVersion a watch may start from. */
  get oldestReplayable(): number {
    return (this.#history[0]?.rv ?? this.#rv + 1) - 1
  }

  /** history is the replayable events after `rv`. */
  eventsSince(rv: number): WatchEvent[] {
    return this.#history.filter((e) => e.rv > rv)
  }

  /** compact forgets the event history: a watch from any older resourceVersion now gets 410 Expired. */
  compact(): void {
    this.#history = []
  }

  #bucket(r: ResourceType): Map<string, KubeObject> {
    const bucket = this.#objects.get(r) ?? new Map<string, KubeObject>()
    this.#objects.set(r, bucket)
    return bucket
  }

  #emit(type: WatchEvent['type'], resource: ResourceType, object: KubeObject, previous?: KubeObject): void {
    const event: WatchEvent = {
      type,
      resource,
      object: structuredClone(object),
      rv: this.#rv,
      ...(previous ? { previous } : {}),
    }
    this.#history.push(event)
    if (this.#history.length > this.historyLimit) this.#history.shift()
    this.emit('event', event)
  }

  get(r: ResourceType, namespace: string, name: string): KubeObject {
    const object = this.#bucket(r).get(`${namespace}/${name}`)
    if (!object) throw errors.notFound(r, name)
    return structuredClone(object)
  }

  list(r: ResourceType, namespace: string | undefined, labels: Selector, fields: Selector): KubeObject[] {
    return [...this.#bucket(r).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) => labels(o.metadata.labels ?? {}) && fields(fieldsOf(o)))
      .map((o) => structuredClone(o))
  }

  create(r: ResourceType, namespace: string, input: KubeObject): KubeObject {
    const body = prune(r, input)
    const meta = body.metadata ?? {}
    const name = meta.name || (meta.generateName ? meta.generateName + randomUUID().slice(0, 5) : '')
    if (!NAME.test(name)) {
      throw errors.invalid(r, name, [
        {
          field: 'metadata.name',
          message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
        },
      ])
    }
    if (r.namespaced) this.#requireNamespace(namespace)
    validateObject(r, { ...body, metadata: { ...meta, name } })
    const bucket = this.#bucket(r)
    const key = `${namespace}/${name}`
    if (bucket.has(key)) throw errors.alreadyExists(r, name)
    this.#rv++
    const object: KubeObject = {
      ...body,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: {
        ...meta,
        name,
        ...(r.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: String(this.#rv),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        ...(r.group ? { generation: 1 } : {}),
      },
    }
    if (r.hasStatus && r.group) delete object.status
    bucket.set(key, object)
    this.#emit('ADDED', r, object)
    return structuredClone(object)
  }

  #requireNamespace(namespace: string): void {
    const namespaces = findResource('', 'namespaces') as ResourceType
    if (!this.#bucket(namespaces).has(`/${namespace}`)) throw errors.notFound(namespaces, namespace)
  }

  /** update replaces an object (or, with `subresource`, only its status), checking resourceVersion if given. */
  update(
    r: ResourceType,
    namespace: string,
    name: string,
    input: KubeObject,
    subresource?: 'status',
  ): KubeObject {
    const body = prune(r, input)
    const bucket = this.#bucket(r)
    const key = `${namespace}/${name}`
    const current = bucket.get(key)
    if (!current) throw errors.notFound(r, name)
    const expected = body.metadata?.resourceVersion
    if (expected && expected !== current.metadata.resourceVersion) throw errors.conflict(r, name)
    let next: KubeObject
    if (subresource === 'status') {
      next = { ...current, status: body.status }
    } else {
      validateObject(r, { ...body, metadata: { ...body.metadata, name } })
      const keep = {
        uid: current.metadata.uid ?? '',
        creationTimestamp: current.metadata.creationTimestamp ?? '',
        name,
        ...(r.namespaced ? { namespace } : {}),
      }
      next = { ...body, apiVersion: apiVersionOf(r), kind: r.kind, metadata: { ...body.metadata, ...keep } }
      if (r.hasStatus && r.group) next.status = current.status
      if (r.group) {
        const changed = JSON.stringify(body.spec) !== JSON.stringify(current.spec)
        next.metadata.generation = (current.metadata.generation ?? 1) + (changed ? 1 : 0)
      }
    }
    if (next.status === undefined) delete next.status
    this.#rv++
    next.metadata.resourceVersion = String(this.#rv)
    bucket.set(key, next)
    this.#emit('MODIFIED', r, next, current)
    return structuredClone(next)
  }

  /** delete removes an object, then (as the garbage collector does) the objects it owns. */
  delete(r: ResourceType, namespace: string, name: string): KubeObject {
    const bucket = this.#bucket(r)
    const key = `${namespace}/${name}`
    const current = bucket.get(key)
    if (!current) throw errors.notFound(r, name)
    bucket.delete(key)
    this.#rv++
    const gone = { ...current, metadata: { ...current.metadata, resourceVersion: String(this.#rv) } }
    this.#emit('DELETED', r, gone)
    this.#collectGarbage(current.metadata.uid ?? '')
    return structuredClone(gone)
  }

  #collectGarbage(ownerUid: string): void {
    for (const [type, bucket] of this.#objects) {
      for (const object of [...bucket.values()]) {
        if (object.metadata.ownerReferences?.some((o) => o.uid === ownerUid)) {
          this.delete(type, object.metadata.namespace ?? '', object.metadata.name ?? '')
        }
      }
    }
  }
}

/** fieldsOf gives the fields a field selector can match. */
export function fieldsOf(o: KubeObject): Record<string, string> {
  return { 'metadata.name': o.metadata.name ?? '', 'metadata.namespace': o.metadata.namespace ?? '' }
}
