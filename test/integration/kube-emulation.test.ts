import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type KubeApiServer, startKubeApiServer } from '../support/kube/api-server.js'
import { start } from '../support/process.js'
import { run } from '../support/tools.js'

let api: KubeApiServer
let dir: string
let kubeconfig: string

beforeAll(async () => {
  api = await startKubeApiServer()
  dir = await mkdtemp(join(tmpdir(), 'mrb-kube-'))
  kubeconfig = await api.writeKubeconfig(dir, 'devices')
  api.createNamespace('devices')
})

afterAll(() => api?.close())

const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args])

async function call(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await api.request(method, path, { body, contentType })
  let text = ''
  for await (const chunk of res) text += chunk
  // biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary API JSON
  return { status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, any> }
}

const CERTS = '/apis/cert-manager.io/v1/namespaces/devices/certificates'
const certificate = (name: string, extra: object = {}) => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name, labels: { app: 'test' } },
  spec: {
    secretName: `${name}-tls`,
    commonName: name,
    issuerRef: { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' },
  },
  ...extra,
})

describe('the real kubectl against the emulated API server', () => {
  it('get, apply --validate=false (create, then configure), get -o json', async () => {
    const empty = await kubectl('get', 'certificates')
    expect(empty.stderr + empty.stdout).toContain('No resources found in devices namespace')
    const manifest = join(dir, 'issuer.yaml')
    await writeFile(
      manifest,
      'apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: ca\nspec:\n  ca:\n    secretName: ca-key-pair\n',
    )
    const created = await kubectl('apply', '--validate=false', '-f', manifest)
    expect(created.stderr).toBe('')
    expect(created.stdout).toContain('issuer.cert-manager.io/ca created')
    await writeFile(
      manifest,
      'apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: ca\n  labels: {tier: x}\nspec:\n  ca:\n    secretName: other\n',
    )
    const configured = await kubectl('apply', '--validate=false', '-f', manifest)
    expect(configured.stdout).toContain('issuer.cert-manager.io/ca configured')
    const json = JSON.parse((await kubectl('get', 'issuer', 'ca', '-o', 'json')).stdout)
    expect(json).toMatchObject({
      kind: 'Issuer',
      metadata: { name: 'ca', namespace: 'devices', generation: 2, labels: { tier: 'x' } },
      spec: { ca: { secretName: 'other' } },
    })
    expect(json.metadata.uid).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('get -w streams changes as they happen', async () => {
    const watch = start('kubectl', [
      '--kubeconfig',
      kubeconfig,
      'get',
      'certificates',
      '-w',
      '--output-watch-events',
    ])
    await call('POST', CERTS, certificate('watched-1'))
    await watch.waitFor(/ADDED\s+watched-1/)
    await call('DELETE', `${CERTS}/watched-1`)
    await watch.waitFor(/DELETED\s+watched-1/)
    watch.kill()
    await watch.exited
  })
})

describe('API semantics, as kube-apiserver', () => {
  it('create: 201 with uid, resourceVersion, generation; again: 409 AlreadyExists Status', async () => {
    const first = await call('POST', CERTS, certificate('c1'))
    expect(first.status).toBe(201)
    expect(first.body.metadata).toMatchObject({ name: 'c1', namespace: 'devices', generation: 1 })
    const again = await call('POST', CERTS, certificate('c1'))
    expect(again).toEqual({
      status: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'certificates.cert-manager.io "c1" already exists',
        reason: 'AlreadyExists',
        details: { name: 'c1', group: 'cert-manager.io', kind: 'certificates' },
        code: 409,
      },
    })
  })

  it('404 NotFound, 422 Invalid (name and schema), unknown namespace', async () => {
    expect((await call('GET', `${CERTS}/missing`)).body).toMatchObject({
      reason: 'NotFound',
      code: 404,
      message: 'certificates.cert-manager.io "missing" not found',
    })
    expect((await call('POST', CERTS, certificate('Bad_Name'))).body).toMatchObject({
      reason: 'Invalid',
      code: 422,
    })
    const schema = await call('POST', CERTS, certificate('no-secret', { spec: { commonName: 'x' } }))
    expect(schema.body).toMatchObject({ reason: 'Invalid', code: 422 })
    const ns = await call(
      'POST',
      '/apis/cert-manager.io/v1/namespaces/nowhere/certificates',
      certificate('c9'),
    )
    expect(ns.body).toMatchObject({ reason: 'NotFound', message: 'namespaces "nowhere" not found' })
    const secret = await call('GET', '/api/v1/namespaces/devices/secrets/none')
    expect(secret.body).toMatchObject({
      message: 'secrets "none" not found',
      details: { name: 'none', kind: 'secrets' },
    })
  })

  it('generateName, status subresource, generation only on spec change, resourceVersion conflicts', async () => {
    const made = await call('POST', CERTS, { ...certificate(''), metadata: { generateName: 'gen-' } })
    const name = made.body.metadata.name as string
    expect(name).toMatch(/^gen-[0-9a-f]{5}$/)
    const withStatus = await call('PUT', `${CERTS}/${name}/status`, { ...made.body, status: { revision: 1 } })
    expect(withStatus.body).toMatchObject({ status: { revision: 1 }, metadata: { generation: 1 } })
    const ignoredStatus = await call('PUT', `${CERTS}/${name}`, {
      ...withStatus.body,
      status: { revision: 9 },
    })
    expect(ignoredStatus.body).toMatchObject({ status: { revision: 1 }, metadata: { generation: 1 } })
    const stale = await call('PUT', `${CERTS}/${name}`, {
      ...made.body,
      spec: { ...made.body.spec, commonName: 'new' },
    })
    expect(stale.body).toMatchObject({ reason: 'Conflict', code: 409 })
    const merged = await call(
      'PATCH',
      `${CERTS}/${name}`,
      { spec: { commonName: 'new' } },
      'application/merge-patch+json',
    )
    expect(merged.body).toMatchObject({ spec: { commonName: 'new' }, metadata: { generation: 2 } })
    const patched = await call(
      'PATCH',
      `${CERTS}/${name}`,
      [{ op: 'replace', path: '/spec/commonName', value: 'newer' }],
      'application/json-patch+json',
    )
    expect(patched.body).toMatchObject({ spec: { commonName: 'newer' }, metadata: { generation: 3 } })
  })

  it('list and watch with label selectors; watch replays from a resourceVersion; 410 Expired when too old', async () => {
    const list = await call('GET', `${CERTS}?labelSelector=${encodeURIComponent('app=test')}`)
    expect(list.body.kind).toBe('CertificateList')
    expect(list.body.items.length).toBeGreaterThan(0)
    expect((await call('GET', `${CERTS}?labelSelector=app%3Dother`)).body.items).toEqual([])
    const rv = list.body.metadata.resourceVersion as string
    await call('POST', CERTS, certificate('after-list'))
    const events = await readWatch(`${CERTS}?watch=true&resourceVersion=${rv}&labelSelector=app%3Dtest`, 1)
    expect(events).toEqual([
      expect.objectContaining({
        type: 'ADDED',
        object: expect.objectContaining({ metadata: expect.objectContaining({ name: 'after-list' }) }),
      }),
    ])
    api.store.compact()
    const expired = await readWatch(`${CERTS}?watch=true&resourceVersion=${rv}`, 1)
    expect(expired).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ reason: 'Expired', code: 410 }) },
    ])
  })

  it('delete answers a Success Status (not the object) and collects what it owns', async () => {
    const owner = await call('POST', CERTS, certificate('owner'))
    const REQS = '/apis/cert-manager.io/v1/namespaces/devices/certificaterequests'
    const ownerRef = {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      name: 'owner',
      uid: owner.body.metadata.uid,
      controller: true,
    }
    await call('POST', REQS, {
      apiVersion: 'cert-manager.io/v1',
      kind: 'CertificateRequest',
      metadata: { name: 'owner-1', ownerReferences: [ownerRef] },
      spec: { request: 'AA==', issuerRef: { name: 'ca' } },
    })
    const deleted = await call('DELETE', `${CERTS}/owner`)
    expect(deleted).toMatchObject({
      status: 200,
      body: {
        kind: 'Status',
        status: 'Success',
        details: {
          name: 'owner',
          group: 'cert-manager.io',
          kind: 'certificates',
          uid: owner.body.metadata.uid,
        },
      },
    })
    expect((await call('GET', `${REQS}/owner-1`)).status).toBe(404)
  })
})

describe('what kube-apiserver does that a client must cope with', () => {
  it('prunes fields the structural schema does not know, silently', async () => {
    const created = await call('POST', CERTS, {
      ...certificate('pruned'),
      bogus: 1,
      spec: {
        ...certificate('pruned').spec,
        notAField: true,
        privateKey: { algorithm: 'ECDSA', colour: 'red' },
      },
    })
    expect(created.status).toBe(201)
    expect(created.body.bogus).toBeUndefined()
    expect(created.body.spec.notAField).toBeUndefined()
    expect(created.body.spec.privateKey).toEqual({ algorithm: 'ECDSA' })
  })

  it('ends a watch at its timeoutSeconds, with a bookmark first when bookmarks were asked for', async () => {
    const rv = (await call('GET', CERTS)).body.metadata.resourceVersion as string
    const events = await readWatch(
      `${CERTS}?watch=true&resourceVersion=${rv}&timeoutSeconds=1&allowWatchBookmarks=true&labelSelector=none%3Dnone`,
      1,
    )
    expect(events).toEqual([
      { type: 'BOOKMARK', object: expect.objectContaining({ metadata: { resourceVersion: rv } }) },
    ])
    // without allowWatchBookmarks the stream just ends
    expect(
      await readWatch(
        `${CERTS}?watch=true&resourceVersion=${rv}&timeoutSeconds=1&labelSelector=none%3Dnone`,
        1,
      ),
    ).toEqual([])
  })

  it('enforces RBAC: the real kubectl is told 403 Forbidden for a verb the Role does not grant', async () => {
    api.grant('limited', {
      user: 'system:serviceaccount:devices:limited',
      roles: [
        { namespace: 'devices', rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }] },
      ],
    })
    const limited = await api.writeKubeconfig(dir, 'devices', 'limited')
    const as = (...args: string[]) => run('kubectl', ['--kubeconfig', limited, ...args])
    expect((await as('get', 'secrets')).stderr).not.toContain('Forbidden')
    const denied = await as('get', 'secret', 'ca-key-pair')
    expect(denied.stderr).toContain(
      'Error from server (Forbidden): secrets "ca-key-pair" is forbidden: User "system:serviceaccount:devices:limited" cannot get resource "secrets" in API group "" in the namespace "devices"',
    )
    expect((await as('get', 'secrets', '-n', 'default')).stderr).toContain('cannot list resource "secrets"')
    expect(
      api.requests.filter((r) => r.user === 'system:serviceaccount:devices:limited').map((r) => r.status),
    ).toEqual([200, 403, 403])
  })
})

/** readWatch reads `count` events from a watch stream, then closes it. */
async function readWatch(
  path: string,
  count: number,
): Promise<{ type: string; object: Record<string, unknown> }[]> {
  const controller = new AbortController()
  const res = await api.request('GET', path, { signal: controller.signal })
  const events: { type: string; object: Record<string, unknown> }[] = []
  let buffer = ''
  const decoder = new TextDecoder()
  for await (const chunk of res as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk)
    const lines = buffer.split('\n')
    buffer = lines.pop() ?? ''
    events.push(...lines.filter(Boolean).map((l) => JSON.parse(l)))
    if (events.length >= count) break
  }
  controller.abort()
  return events
}
