import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, request as httpsRequest, type Server } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { jsonPatch, mergePatch } from './patch.js'
import { authorize, type Grant } from './rbac.js'
import { apiVersionOf, discovery, findResource, RESOURCES, type ResourceType } from './resources.js'
import { parseFieldSelector, parseLabelSelector } from './selectors.js'
import { ApiError, errors } from './status.js'
import { type KubeObject, ObjectStore } from './store.js'
import { serveWatch } from './watch.js'

/** Verb is the Kubernetes verb of a request. */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete'

/** RequestRecord is one request the emulated API server answered. */
export interface RequestRecord {
  readonly verb: Verb
  /** The user the bearer token maps to (see grant); `admin` for the tester's token. */
  readonly user: string
  readonly group: string
  readonly resource: string
  readonly name?: string
  readonly status: number
  /** Milliseconds from the request's arrival to its answer (to the start of the stream, for a watch). */
  readonly ms?: number
  /** True when a Fault answered, not the server. */
  readonly injected?: boolean
}

/** Fault makes matching requests fail the way an overloaded or broken API server does. */
export interface Fault {
  readonly verb?: Verb
  readonly resource?: string
  readonly status: 403 | 429 | 500 | 503
  readonly retryAfterSeconds?: number
  times: number
}

/** KubeApiServer is a running emulated API server. */
export interface KubeApiServer {
  readonly url: string
  readonly store: ObjectStore
  readonly requests: RequestRecord[]
  readonly faults: Fault[]
  /** Open watch connections, per resource. */
  readonly openWatches: Map<string, number>
  /** Watch connections ever opened, per resource. */
  readonly watchesOpened: Map<string, number>
  /** TLS connections accepted (a client that reuses connections opens few). */
  readonly connections: { count: number }
  /** Admission webhooks, called on create and update of an object (not its status), as kube-apiserver does. */
  readonly admission: ((resource: ResourceType, object: KubeObject) => void)[]
  /** grant lets requests with bearer `token` do what `grant` allows (RBAC); other tokens are cluster-admin. */
  grant(token: string, grant: Grant): void
  /** writeKubeconfig writes a kubeconfig for this server into `dir` and returns its path. */
  writeKubeconfig(dir: string, namespace?: string, token?: string): Promise<string>
  /** request sends one request, trusting the server's CA; the response body is a stream (watch) or JSON. */
  request(
    method: string,
    path: string,
    options?: { body?: unknown; contentType?: string; signal?: AbortSignal },
  ): Promise<IncomingMessage>
  /** createNamespace makes a namespace, as `kubectl create namespace` would. */
  createNamespace(name: string): void
  /** dropWatches cuts every open watch connection (of one resource), as a network failure or a restart would. */
  dropWatches(plural?: string): void
  close(): Promise<void>
}

interface Route {
  readonly resource: ResourceType
  readonly namespace: string | undefined
  readonly name: string | undefined
  readonly subresource: 'status' | undefined
}

function route(path: string): Route | undefined {
  const m = path.match(/^\/(?:api\/v1|apis\/([^/]+)\/v1)\/(.*)$/)
  if (!m) return undefined
  const group = m[1] ?? ''
  let segments = (m[2] ?? '').split('/').filter(Boolean)
  let namespace: string | undefined
  if (segments[0] === 'namespaces' && segments.length >= 3) {
    namespace = segments[1]
    segments = segments.slice(2)
  }
  const [plural = '', name, sub] = segments
  const resource = findResource(group, plural)
  if (!resource || (sub !== undefined && sub !== 'status') || segments.length > 3) return undefined
  return { resource, namespace, name, subresource: sub === 'status' ? 'status' : undefined }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return text ? JSON.parse(text) : {}
  } catch {
    throw errors.badRequest('the request body is not JSON')
  }
}

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
}

/** startKubeApiServer starts an HTTP server that behaves like kube-apiserver for the resources in RESOURCES. */
export async function startKubeApiServer(): Promise<KubeApiServer> {
  const store = new ObjectStore()
  const namespaces = RESOURCES.find((r) => r.plural === 'namespaces') as ResourceType
  store.create(namespaces, '', { metadata: { name: 'default' } })
  const requests: RequestRecord[] = []
  const faults: Fault[] = []
  const openWatches = new Map<string, number>()
  const watchesOpened = new Map<string, number>()
  const watchSockets = new Map<Socket, string>()
  const admission: ((resource: ResourceType, object: KubeObject) => void)[] = []
  const grants = new Map<string, Grant>()

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now()
    const url = new URL(req.url ?? '/', 'http://localhost')
    const doc = req.method === 'GET' ? discovery(url.pathname) : undefined
    if (doc) return send(res, 200, doc)
    const r = route(url.pathname)
    if (!r)
      return send(
        res,
        404,
        errors.notFound({ ...namespaces, plural: 'paths', group: '' }, url.pathname).status(),
      )
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1'
    const verb = verbOf(req.method ?? 'GET', r, isWatch)
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    const grant = grants.get(token)
    const record = (status: number, injected?: boolean) =>
      requests.push({
        ...(injected ? { injected } : {}),
        verb,
        user: grant?.user ?? 'admin',
        group: r.resource.group,
        resource: r.resource.plural + (r.subresource ? `/${r.subresource}` : ''),
        ...(r.name ? { name: r.name } : {}),
        status,
        ms: Math.round((performance.now() - arrived) * 100) / 100,
      })
    if (grant) {
      try {
        authorize(grant, {
          verb,
          resource: r.resource,
          ...(r.subresource ? { subresource: r.subresource } : {}),
          ...(r.namespace ? { namespace: r.namespace } : {}),
          // list/watch of one object by field selector is authorised against resourceNames, as in kube-apiserver
          ...(r.name
            ? { name: r.name }
            : /^metadata\.name=([^,]+)$/.test(url.searchParams.get('fieldSelector') ?? '')
              ? { name: (url.searchParams.get('fieldSelector') ?? '').slice('metadata.name='.length) }
              : {}),
        })
      } catch (err) {
        record(403)
        throw err
      }
    }
    const fault = faults.find(
      (f) => f.times > 0 && (!f.verb || f.verb === verb) && (!f.resource || f.resource === r.resource.plural),
    )
    if (fault) {
      fault.times--
      const error =
        fault.status === 429
          ? errors.tooManyRequests(fault.retryAfterSeconds ?? 1)
          : new ApiError(
              fault.status,
              ({ 403: 'Forbidden', 500: 'InternalError', 503: 'ServiceUnavailable' } as const)[fault.status],
              'injected fault',
            )
      record(error.code, true)
      return send(
        res,
        error.code,
        error.status(),
        error.retryAfterSeconds ? { 'retry-after': String(error.retryAfterSeconds) } : {},
      )
    }
    const namespace = r.resource.namespaced ? r.namespace : ''
    if (verb === 'watch') {
      record(200)
      watchesOpened.set(r.resource.plural, (watchesOpened.get(r.resource.plural) ?? 0) + 1)
      openWatches.set(r.resource.plural, (openWatches.get(r.resource.plural) ?? 0) + 1)
      watchSockets.set(req.socket, r.resource.plural)
      res.once('close', () => {
        watchSockets.delete(req.socket)
        openWatches.set(r.resource.plural, (openWatches.get(r.resource.plural) ?? 1) - 1)
      })
      // cluster-scoped: every object (namespace undefined), as for list
      return serveWatch(
        store,
        r.resource,
        r.resource.namespaced ? r.namespace : undefined,
        url.searchParams,
        res,
      )
    }
    let result: Awaited<ReturnType<typeof perform>>
    try {
      result = await perform(store, verb, r, namespace ?? '', url, req, admission)
    } catch (err) {
      // refused requests are logged too (404, 409, 406 from a webhook, …), as kube-apiserver's audit log has them
      record(err instanceof ApiError ? err.code : 500)
      throw err
    }
    record(result.status)
    send(res, result.status, result.body)
  }

  // like kube-apiserver, HTTPS only: a throwaway PKI for its serving certificate
  // made with the openssl CLI, not the bridge's own PKI code: a self-signed serving certificate for 127.0.0.1,
  // which the kubeconfig trusts as the cluster CA (as kind's and kubeadm's clusters are trusted)
  const pkiDir = await mkdtemp(join(tmpdir(), 'mrb-kube-pki-'))
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=kube-apiserver',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    join(pkiDir, 'apiserver.key'),
    '-out',
    join(pkiDir, 'apiserver.crt'),
  ])
  const caPem = await readFile(join(pkiDir, 'apiserver.crt'))
  const tls = { cert: caPem, key: await readFile(join(pkiDir, 'apiserver.key')) }
  const server: Server = createServer(tls, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const error = err instanceof ApiError ? err : errors.internal((err as Error).message)
      if (!res.headersSent) send(res, error.code, error.status())
    })
  })
  server.keepAliveTimeout = 60_000
  const connections = { count: 0 }
  server.on('secureConnection', () => connections.count++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    store,
    requests,
    faults,
    openWatches,
    watchesOpened,
    connections,
    admission,
    grant(token, grant) {
      grants.set(token, grant)
    },
    async writeKubeconfig(dir, namespace = 'default', token = 'emulated') {
      const file = join(dir, token === 'emulated' ? 'kubeconfig' : `kubeconfig-${token}`)
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'emulated',
            cluster: { server: url, 'certificate-authority-data': caPem.toString('base64') },
          },
        ],
        users: [{ name: 'tester', user: { token } }],
        contexts: [{ name: 'emulated', context: { cluster: 'emulated', user: 'tester', namespace } }],
        'current-context': 'emulated',
      }
      await writeFile(file, JSON.stringify(config))
      return file
    },
    request(method, path, options = {}) {
      return new Promise((resolve, reject) => {
        const req = httpsRequest(url + path, {
          method,
          ca: caPem,
          headers: { 'content-type': options.contentType ?? 'application/json' },
          ...(options.signal ? { signal: options.signal } : {}),
        })
        req.once('response', resolve)
        req.once('error', reject)
        req.end(options.body === undefined ? undefined : JSON.stringify(options.body))
      })
    },
    createNamespace(name) {
      store.create(namespaces, '', { metadata: { name } })
    },
    dropWatches(plural) {
      for (const [socket, of] of watchSockets) if (!plural || of === plural) socket.destroy()
    },
    async close() {
      for (const socket of watchSockets.keys()) socket.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

function verbOf(method: string, r: Route, isWatch: boolean): Verb {
  switch (method) {
    case 'GET':
      return isWatch ? 'watch' : r.name ? 'get' : 'list'
    case 'POST':
      return 'create'
    case 'PUT':
      return 'update'
    case 'PATCH':
      return 'patch'
    case 'DELETE':
      return 'delete'
    default:
      throw errors.methodNotAllowed()
  }
}

async function perform(
  store: ObjectStore,
  verb: Verb,
  r: Route,
  namespace: string,
  url: URL,
  req: IncomingMessage,
  admission: ((resource: ResourceType, object: KubeObject) => void)[],
) {
  const admit = (object: KubeObject): KubeObject => {
    if (!subresource) for (const hook of admission) hook(resource, object)
    return object
  }
  const { resource, name, subresource } = r
  switch (verb) {
    case 'get':
      return { status: 200, body: store.get(resource, namespace, name ?? '') }
    case 'list': {
      const items = store.list(
        resource,
        r.resource.namespaced ? r.namespace : undefined,
        parseLabelSelector(url.searchParams.get('labelSelector')),
        parseFieldSelector(url.searchParams.get('fieldSelector')),
      )
      return {
        status: 200,
        body: {
          kind: `${resource.kind}List`,
          apiVersion: apiVersionOf(resource),
          metadata: { resourceVersion: String(store.resourceVersion) },
          items,
        },
      }
    }
    case 'create': {
      if (name) throw errors.methodNotAllowed()
      const body = (await readJson(req)) as KubeObject
      if (body.metadata?.namespace && resource.namespaced && body.metadata.namespace !== namespace) {
        throw errors.badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        )
      }
      return { status: 201, body: store.create(resource, namespace, admit(body)) }
    }
    case 'update':
      return {
        status: 200,
        body: store.update(
          resource,
          namespace,
          name ?? '',
          admit((await readJson(req)) as KubeObject),
          subresource,
        ),
      }
    case 'patch': {
      const type = (req.headers['content-type'] ?? '').split(';')[0] ?? ''
      const patch = (await readJson(req)) as never
      const current = store.get(resource, namespace, name ?? '')
      let next: unknown
      if (type === 'application/json-patch+json') next = jsonPatch(current as never, patch)
      else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json')
        next = mergePatch(current as never, patch)
      else throw errors.unsupportedMediaType(type)
      // a resourceVersion in the patch is a precondition; without one the patch applies to the current object
      return {
        status: 200,
        body: store.update(resource, namespace, name ?? '', admit(next as KubeObject), subresource),
      }
    }
    case 'delete': {
      // as kube-apiserver does for an object deleted at once (no finalizers): a Success Status, not the object
      const gone = store.delete(resource, namespace, name ?? '')
      return {
        status: 200,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: {
            name: gone.metadata.name,
            group: resource.group,
            kind: resource.plural,
            uid: gone.metadata.uid,
          },
        },
      }
    }
    default:
      throw errors.methodNotAllowed()
  }
}
