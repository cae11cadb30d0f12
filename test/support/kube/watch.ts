import type { ServerResponse } from 'node:http'
import type { ResourceType } from './resources.js'
import { parseFieldSelector, parseLabelSelector } from './selectors.js'
import { errors } from './status.js'
import { fieldsOf, type KubeObject, type ObjectStore, type WatchEvent } from './store.js'

/**
 * serveWatch streams watch events as JSON lines, like kube-apiserver: from `resourceVersion` it replays the
 * bounded history (410 Expired as an ERROR event, then close, when that is too old); without one it starts
 * with ADDED for every object. An object that stops or starts matching the selectors is DELETED or ADDED.
 */
export function serveWatch(
  store: ObjectStore,
  resource: ResourceType,
  namespace: string | undefined,
  params: URLSearchParams,
  res: ServerResponse,
): void {
  const labels = parseLabelSelector(params.get('labelSelector'))
  const fields = parseFieldSelector(params.get('fieldSelector'))
  const inScope = (o: KubeObject): boolean => namespace === undefined || o.metadata.namespace === namespace
  const matches = (o: KubeObject | undefined): boolean =>
    !!o && inScope(o) && labels(o.metadata.labels ?? {}) && fields(fieldsOf(o))
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
  res.flushHeaders() // as kube-apiserver does: the client sees the watch established before any event
  // a watch ended (timeout, dropped by a test) writes nothing more, whatever timer or event comes late
  const write = (type: string, object: object): void => {
    if (res.writableEnded || res.destroyed) return
    res.write(`${JSON.stringify({ type, object })}\n`)
  }
  const deliver = (event: WatchEvent): void => {
    if (event.resource !== resource) return
    const now = matches(event.object)
    const before = event.type === 'MODIFIED' ? matches(event.previous) : now
    if (event.type === 'MODIFIED' && before && !now) write('DELETED', event.object)
    else if (event.type === 'MODIFIED' && !before && now) write('ADDED', event.object)
    else if (now) write(event.type, event.object)
  }
  const requested = params.get('resourceVersion')
  if (requested && requested !== '0') {
    if (Number(requested) < store.oldestReplayable) {
      write('ERROR', errors.expired(requested, store.oldestReplayable).status())
      res.end()
      return
    }
    for (const event of store.eventsSince(Number(requested))) deliver(event)
  } else {
    for (const object of store.list(resource, namespace, labels, fields)) write('ADDED', object)
  }
  store.on('event', deliver)
  // like kube-apiserver: bookmarks (only when asked) carry the current resourceVersion, about once a minute
  // and when the watch ends at its timeoutSeconds
  const bookmark = (): void => {
    if (params.get('allowWatchBookmarks') !== 'true') return
    write('BOOKMARK', {
      kind: resource.kind,
      apiVersion: resource.group ? `${resource.group}/v1` : 'v1',
      metadata: { resourceVersion: String(store.resourceVersion) },
    })
  }
  const timers = [setInterval(bookmark, 60_000)]
  const timeoutSeconds = Number(params.get('timeoutSeconds') ?? 0)
  if (timeoutSeconds > 0)
    timers.push(
      setTimeout(() => {
        bookmark()
        res.end()
      }, timeoutSeconds * 1000),
    )
  const stop = (): void => {
    store.off('event', deliver)
    for (const t of timers) clearTimeout(t)
  }
  res.once('finish', stop)
  res.once('close', stop)
}
