import { randomBytes, X509Certificate } from 'node:crypto'
import { adoptable } from './adopt.js'
import { RateLimiter } from './rate-limiter.js'
import { findResource, type ResourceType } from './resources.js'
import { buildCsr, generatePrivateKey, signCsr } from './signer.js'
import type { KubeObject, ObjectStore, WatchEvent } from './store.js'
import { WorkQueue } from './workqueue.js'

type Condition = {
  type: string
  status: string
  reason: string
  message: string
  lastTransitionTime: string
  observedGeneration?: number
}
// biome-ignore lint/suspicious/noExplicitAny: emulated controllers read arbitrary spec fields
type Obj = KubeObject & { spec: Record<string, any>; status?: Record<string, any> }

const r = (group: string, plural: string): ResourceType => findResource(group, plural) as ResourceType
const CERTIFICATES = r('cert-manager.io', 'certificates')
const REQUESTS = r('cert-manager.io', 'certificaterequests')
const ISSUERS = r('cert-manager.io', 'issuers')
const CLUSTER_ISSUERS = r('cert-manager.io', 'clusterissuers')
/** cert-manager's --cluster-resource-namespace: where a ClusterIssuer's CA Secret lives. */
export const CLUSTER_RESOURCE_NAMESPACE = 'cert-manager'
const SECRETS = r('', 'secrets')
const b64 = (text: string): string => Buffer.from(text).toString('base64')
const unb64 = (text: string | undefined): string => Buffer.from(text ?? '', 'base64').toString('utf8')
const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

/** EmulatedCertManagerOptions steer the emulated controllers, for fault tests. */
export interface EmulatedCertManagerOptions {
  /** Delay between approval and issuance. */
  issuanceDelayMs: number
  /** Requests for which the approver says Denied. */
  deny: (request: KubeObject) => boolean
  /** Requests the issuer fails. */
  fail: (request: KubeObject) => boolean
  /** The reason the issuer sets on a failed request (issuer-specific in real cert-manager). */
  failReason: string
  /**
   * The controller's client-side rate limit, per client (the Kubernetes clientset and the cert-manager one each
   * have their own token bucket, as client-go gives every clientset): default cert-manager's (20 QPS, burst 50).
   */
  rateLimit: { qps: number; burst: number }
  /**
   * cert-manager's ServerSideApply feature gate: a successful issuance leaves `Issuing=False`, reason `Issued`
   * (applied with the revision), instead of removing the Issuing condition; `Ready=True` follows in a write of its own.
   */
  serverSideApply: boolean
}

/** The controller's client-side rate limit: cert-manager's defaults (--kube-api-qps 20, --kube-api-burst 50). */
export const CERT_MANAGER_QPS = 20
export const CERT_MANAGER_BURST = 50

function setCondition(object: Obj, condition: Omit<Condition, 'lastTransitionTime'>): Obj {
  const conditions = ((object.status?.conditions ?? []) as Condition[]).filter(
    (c) => c.type !== condition.type,
  )
  return {
    ...object,
    status: { ...object.status, conditions: [...conditions, { ...condition, lastTransitionTime: now() }] },
  }
}

const conditionOf = (object: Obj, type: string): Condition | undefined =>
  ((object.status?.conditions ?? []) as Condition[]).find((c) => c.type === type)

function hours(duration: string | undefined): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration ?? '2160h')
  return Number(m?.[1] ?? 0) + Number(m?.[2] ?? 0) / 60 + Number(m?.[3] ?? 0) / 3600 || 2160
}

/** The controller's two clients, each with its own token bucket: the core API (Secrets) and cert-manager.io. */
export type ControllerClient = 'kube' | 'certManager'
/** The requests the controller sends: it reads from its informer caches, so only writes. */
export type ControllerVerb = 'create' | 'update' | 'delete'
type Counts = Record<ControllerVerb, number>

const ownerRef = (certificate: Obj) => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  name: certificate.metadata.name ?? '',
  uid: certificate.metadata.uid ?? '',
  controller: true,
})

/**
 * EmulatedCertManager plays cert-manager's controllers against the store, with the transitions the real ones
 * make (each its own MODIFIED event): CA Issuer readiness; CertificateRequest approval, then issuance or
 * Denied/Failed; Certificate issuing through a temporary key Secret and a `<name>-<revision>` request to the
 * TLS Secret with cert-manager's keys and annotations.
 *
 * As the real controllers: events queue keys (one work queue, one reconcile per key at a time); a reconcile reads
 * the store directly, which stands for the informer cache and costs no API request; every write is one API
 * request and first waits for a token of its client's bucket (client-go's 20 QPS, burst 50 by default). A
 * reconcile with nothing to do sends nothing; one whose write fails (a conflict) is requeued with backoff.
 */
export class EmulatedCertManager {
  readonly options: EmulatedCertManagerOptions
  readonly #store: ObjectStore
  readonly #queue = new WorkQueue()
  readonly #limiters: Record<ControllerClient, RateLimiter> = {
    kube: new RateLimiter(() => this.options.rateLimit),
    certManager: new RateLimiter(() => this.options.rateLimit),
  }
  /** The API requests the controller sent, per client and verb (each spent one token). */
  readonly requests: Record<ControllerClient, Counts> = {
    kube: { create: 0, update: 0, delete: 0 },
    certManager: { create: 0, update: 0, delete: 0 },
  }
  readonly #listener = (event: WatchEvent): void => this.#enqueue(event)

  constructor(store: ObjectStore, options: Partial<EmulatedCertManagerOptions> = {}) {
    this.#store = store
    this.options = {
      issuanceDelayMs: 0,
      deny: () => false,
      fail: () => false,
      failReason: 'Failed',
      serverSideApply: false,
      rateLimit: { qps: CERT_MANAGER_QPS, burst: CERT_MANAGER_BURST },
      ...options,
    }
    store.on('event', this.#listener)
  }

  stop(): void {
    this.#store.off('event', this.#listener)
    this.#queue.stop()
  }

  /** writes is the number of API requests the controller sent (every one a write; each spent one token). */
  get writes(): number {
    let total = 0
    for (const counts of Object.values(this.requests)) for (const n of Object.values(counts)) total += n
    return total
  }

  /** #request sends one API request through `client`: first a token (waiting for it), then the write. */
  async #request<T>(client: ControllerClient, verb: ControllerVerb, send: () => T): Promise<T> {
    await this.#queue.delay(this.#limiters[client].reserve())
    if (this.#queue.stopped) throw new Error('the controller has stopped')
    this.requests[client][verb]++
    return send()
  }

  /**
   * #create creates an object; one whose controlling owner is gone by then is deleted at once, as the garbage
   * collector would (the API server's work, not a request of the controller).
   */
  async #create(client: ControllerClient, type: ResourceType, ns: string, body: KubeObject): Promise<void> {
    const created = await this.#request(client, 'create', () => this.#store.create(type, ns, body))
    const owner = created.metadata.ownerReferences?.find((o) => o.controller)
    const current = owner && this.#get(CERTIFICATES, ns, owner.name)
    if (owner && current?.metadata.uid !== owner.uid)
      this.#store.delete(type, ns, created.metadata.name ?? '')
  }

  #get(type: ResourceType, ns: string, name: string): Obj | undefined {
    try {
      return this.#store.get(type, ns, name) as Obj
    } catch {
      return undefined
    }
  }

  #list(type: ResourceType, ns: string | undefined): Obj[] {
    return this.#store.list(
      type,
      ns,
      () => true,
      () => true,
    ) as Obj[]
  }

  /** #enqueue maps an event to the keys of the controllers that watch it, as their event handlers do. */
  #enqueue(event: WatchEvent): void {
    const ns = event.object.metadata.namespace ?? ''
    const name = event.object.metadata.name ?? ''
    const q = this.#queue
    if (event.type === 'DELETED') {
      if (event.resource === SECRETS)
        for (const c of this.#list(CERTIFICATES, ns))
          if (c.spec.secretName === name) {
            const cert = c.metadata.name ?? ''
            q.add(`secret-deleted/${ns}/${cert}`, () => this.#secretDeleted(ns, cert, name))
          }
      return
    }
    if (event.resource === ISSUERS || event.resource === CLUSTER_ISSUERS) {
      const kind = event.resource === ISSUERS ? 'Issuer' : 'ClusterIssuer'
      q.add(`issuers/${kind}/${ns}/${name}`, () => this.#reconcileIssuer(event.resource, ns, name))
      // a request waiting for its issuer is requeued when the issuer changes, as cert-manager does
      for (const request of this.#list(REQUESTS, kind === 'Issuer' ? ns : undefined)) {
        const ref = request.spec.issuerRef ?? {}
        if (ref.name !== name || (ref.kind ?? 'Issuer') !== kind) continue
        this.#enqueueRequest(request.metadata.namespace ?? '', request.metadata.name ?? '')
      }
    } else if (event.resource === SECRETS) {
      // the issuer controller: issuers whose CA Secret this is
      const issuers = this.#list(ISSUERS, ns).map((i) => ({ type: ISSUERS, kind: 'Issuer', issuer: i }))
      if (ns === CLUSTER_RESOURCE_NAMESPACE)
        for (const i of this.#list(CLUSTER_ISSUERS, undefined))
          issuers.push({ type: CLUSTER_ISSUERS, kind: 'ClusterIssuer', issuer: i })
      for (const { type, kind, issuer } of issuers) {
        if (issuer.spec?.ca?.secretName !== name) continue
        const ins = issuer.metadata.namespace ?? ''
        const iname = issuer.metadata.name ?? ''
        q.add(`issuers/${kind}/${ins}/${iname}`, () => this.#reconcileIssuer(type, ins, iname))
      }
    } else if (event.resource === REQUESTS) {
      this.#enqueueRequest(ns, name)
      const certificate = event.object.metadata.annotations?.['cert-manager.io/certificate-name']
      if (certificate) q.add(`issuing/${ns}/${certificate}`, () => this.#reconcileIssuing(ns, certificate))
    } else if (event.resource === CERTIFICATES) {
      q.add(`certificates/${ns}/${name}`, () => this.#reconcileCertificate(ns, name))
      q.add(`issuing/${ns}/${name}`, () => this.#reconcileIssuing(ns, name))
    }
  }

  #enqueueRequest(ns: string, name: string): void {
    this.#queue.add(`certificaterequests/${ns}/${name}`, () => this.#reconcileRequest(ns, name))
  }

  #caSecret(issuer: Obj): Obj | undefined {
    const ns =
      issuer.kind === 'ClusterIssuer' ? CLUSTER_RESOURCE_NAMESPACE : (issuer.metadata.namespace ?? '')
    return this.#get(SECRETS, ns, issuer.spec?.ca?.secretName ?? '')
  }

  async #reconcileIssuer(type: ResourceType, ns: string, name: string): Promise<void> {
    const issuer = this.#get(type, ns, name)
    if (!issuer) return
    const secret = this.#caSecret(issuer)
    const ok = !!secret?.data && !!(secret.data as Record<string, string>)['tls.key']
    const ready = conditionOf(issuer, 'Ready')
    if (ready && (ready.status === 'True') === ok) return
    const condition = ok
      ? { type: 'Ready', status: 'True', reason: 'KeyPairVerified', message: 'Signing CA verified' }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'ErrGetKeyPair',
          message: `Error getting keypair for CA issuer: secrets "${issuer.spec?.ca?.secretName}" not found`,
        }
    await this.#request('certManager', 'update', () =>
      this.#store.update(
        type,
        ns,
        name,
        setCondition(issuer, { ...condition, observedGeneration: issuer.metadata.generation ?? 1 }),
        'status',
      ),
    )
  }

  async #reconcileRequest(ns: string, name: string): Promise<void> {
    const request = this.#get(REQUESTS, ns, name)
    if (!request) return
    const ready = conditionOf(request, 'Ready')
    if (ready?.status === 'True' || ready?.reason === 'Failed' || ready?.reason === 'Denied') return
    const updateStatus = (next: Obj) =>
      this.#request('certManager', 'update', () => this.#store.update(REQUESTS, ns, name, next, 'status'))
    if (conditionOf(request, 'Denied')) {
      await updateStatus(
        setCondition(request, {
          type: 'Ready',
          status: 'False',
          reason: 'Denied',
          message: 'The CertificateRequest was denied by an approval controller',
        }),
      )
      return
    }
    if (!conditionOf(request, 'Approved')) {
      // the approver-policy example in deploy/ allows only non-CA client certificates
      const denied = this.options.deny(request) || request.spec.isCA === true
      const condition = denied
        ? { type: 'Denied', status: 'True', reason: 'policy.cert-manager.io', message: 'Denied by policy' }
        : {
            type: 'Approved',
            status: 'True',
            reason: 'cert-manager.io',
            message: 'Certificate request has been approved by cert-manager.io',
          }
      // its MODIFIED event queues this request again, for the next step
      await updateStatus(setCondition(request, condition))
      return
    }
    const cluster = request.spec.issuerRef?.kind === 'ClusterIssuer'
    const issuer = this.#get(
      cluster ? CLUSTER_ISSUERS : ISSUERS,
      cluster ? '' : ns,
      request.spec.issuerRef?.name ?? '',
    )
    if (!issuer || conditionOf(issuer, 'Ready')?.status !== 'True') {
      if (ready?.reason === 'Pending') return
      const message = issuer
        ? 'Referenced issuer does not have a Ready status condition'
        : `Referenced "Issuer" not found: issuer.cert-manager.io "${request.spec.issuerRef?.name}" not found`
      await updateStatus(
        setCondition(request, { type: 'Ready', status: 'False', reason: 'Pending', message }),
      )
      return
    }
    await this.#queue.delay(this.options.issuanceDelayMs)
    await this.#sign(ns, name, issuer)
  }

  async #sign(ns: string, name: string, issuer: Obj): Promise<void> {
    const request = this.#get(REQUESTS, ns, name)
    if (!request || conditionOf(request, 'Ready')?.status === 'True' || request.status?.certificate) return
    const updateStatus = (next: Obj) =>
      this.#request('certManager', 'update', () => this.#store.update(REQUESTS, ns, name, next, 'status'))
    if (this.options.fail(request)) {
      const failed = setCondition(request, {
        type: 'Ready',
        status: 'False',
        reason: this.options.failReason,
        message: 'Failed to sign certificate: injected failure',
      })
      await updateStatus({ ...failed, status: { ...failed.status, failureTime: now() } })
      return
    }
    const data = this.#caSecret(issuer)?.data as Record<string, string>
    const caPem = unb64(data['tls.crt'])
    const usages = (request.spec.usages ?? ['digital signature', 'key encipherment']) as string[]
    const certPem = await signCsr(
      unb64(request.spec.request),
      { certificatePem: caPem, keyPem: unb64(data['tls.key']) },
      usages,
      hours(request.spec.duration) * 3600_000,
      request.spec.isCA === true,
    )
    const issued = setCondition(request, {
      type: 'Ready',
      status: 'True',
      reason: 'Issued',
      message: 'Certificate fetched from issuer successfully',
    })
    await updateStatus({ ...issued, status: { ...issued.status, certificate: b64(certPem), ca: b64(caPem) } })
  }

  /**
   * #reconcileCertificate is the trigger, key manager and request manager controllers: Issuing=True with the
   * name of the next private key Secret; then that Secret (owned by the Certificate); then the request
   * `<name>-<revision>`. Each step is taken only when the cache shows it not yet done.
   */
  async #reconcileCertificate(ns: string, name: string): Promise<void> {
    const certificate = this.#get(CERTIFICATES, ns, name)
    if (!certificate) return
    const generation = certificate.metadata.generation ?? 1
    const ready = conditionOf(certificate, 'Ready')
    if (ready?.status === 'True' && ready.observedGeneration === generation) return
    const issuing = conditionOf(certificate, 'Issuing')
    if (issuing?.status === 'False') return // failed: the real controller backs off for an hour
    if (!issuing) {
      if (await this.#adopt(certificate)) return
      const keySecret = `${name}-${randomBytes(3).toString('hex').slice(0, 5)}`
      const started = setCondition(certificate, {
        type: 'Issuing',
        status: 'True',
        reason: 'DoesNotExist',
        message: 'Issuing certificate as Secret does not exist',
      })
      // its MODIFIED event queues this Certificate again, for the key and the request
      await this.#request('certManager', 'update', () =>
        this.#store.update(
          CERTIFICATES,
          ns,
          name,
          { ...started, status: { ...started.status, nextPrivateKeySecretName: keySecret } },
          'status',
        ),
      )
      return
    }
    const keySecret = certificate.status?.nextPrivateKeySecretName as string | undefined
    if (!keySecret) return
    if (!this.#get(SECRETS, ns, keySecret))
      await this.#create('kube', SECRETS, ns, {
        metadata: {
          name: keySecret,
          labels: { 'cert-manager.io/next-private-key': 'true' },
          ownerReferences: [ownerRef(certificate)],
        },
        data: { 'tls.key': b64(generatePrivateKey(certificate.spec.privateKey)) },
      })
    const keyPem = unb64(
      (this.#get(SECRETS, ns, keySecret)?.data as Record<string, string> | undefined)?.['tls.key'],
    )
    const revision = Number(certificate.status?.revision ?? 0) + 1
    const requestName = `${name}-${revision}`
    if (!keyPem || this.#get(REQUESTS, ns, requestName)) return
    const csr = await buildCsr(keyPem, certificate.spec)
    await this.#create('certManager', REQUESTS, ns, {
      apiVersion: 'cert-manager.io/v1',
      kind: 'CertificateRequest',
      metadata: {
        name: requestName,
        annotations: {
          'cert-manager.io/certificate-name': name,
          'cert-manager.io/certificate-revision': String(revision),
          'cert-manager.io/private-key-secret-name': keySecret,
        },
        ownerReferences: [ownerRef(certificate)],
      },
      spec: {
        request: b64(csr),
        usages: certificate.spec.usages,
        duration: certificate.spec.duration,
        issuerRef: certificate.spec.issuerRef,
      },
    })
  }

  /** #reconcileIssuing is the issuing controller: a Certificate that is Issuing, once its request is final. */
  async #reconcileIssuing(ns: string, name: string): Promise<void> {
    const certificate = this.#get(CERTIFICATES, ns, name)
    if (!certificate || conditionOf(certificate, 'Issuing')?.status !== 'True') return
    const revision = Number(certificate.status?.revision ?? 0) + 1
    const request = this.#get(REQUESTS, ns, `${name}-${revision}`)
    const owned = request?.metadata.ownerReferences?.some((o) => o.uid === certificate.metadata.uid)
    if (!request || !owned) return
    const ready = conditionOf(request, 'Ready')
    if (ready?.status === 'True') await this.#complete(ns, name, certificate, request)
    else if (ready?.status === 'False' && ready.reason !== 'Pending' && ready.reason !== undefined)
      await this.#failed(ns, name, certificate, ready)
  }

  async #complete(ns: string, name: string, certificate: Obj, request: Obj): Promise<void> {
    const keySecret = certificate.status?.nextPrivateKeySecretName as string
    const key = (this.#get(SECRETS, ns, keySecret)?.data as Record<string, string> | undefined)?.['tls.key']
    const spec = certificate.spec
    const template = spec.secretTemplate ?? {}
    const secret = {
      metadata: {
        name: spec.secretName,
        labels: { ...template.labels, 'controller.cert-manager.io/fao': 'true' },
        annotations: {
          ...template.annotations,
          'cert-manager.io/certificate-name': name,
          'cert-manager.io/common-name': spec.commonName ?? '',
          'cert-manager.io/alt-names': (spec.dnsNames ?? []).join(','),
          'cert-manager.io/ip-sans': '',
          'cert-manager.io/uri-sans': (spec.uris ?? []).join(','),
          'cert-manager.io/issuer-name': spec.issuerRef.name,
          'cert-manager.io/issuer-kind': spec.issuerRef.kind ?? 'Issuer',
          'cert-manager.io/issuer-group': spec.issuerRef.group ?? 'cert-manager.io',
        },
      },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': request.status?.certificate, 'tls.key': key, 'ca.crt': request.status?.ca },
    }
    const existing = this.#get(SECRETS, ns, spec.secretName)
    // a retried reconcile (a conflict below) finds the Secret written and the key Secret gone
    const written =
      (existing?.data as Record<string, string> | undefined)?.['tls.crt'] === request.status?.certificate
    if (!written) {
      if (!key) return
      if (existing)
        await this.#request('kube', 'update', () =>
          this.#store.update(SECRETS, ns, spec.secretName, {
            ...secret,
            metadata: { ...secret.metadata, resourceVersion: existing.metadata.resourceVersion },
          } as KubeObject),
        )
      else await this.#request('kube', 'create', () => this.#store.create(SECRETS, ns, secret as KubeObject))
    }
    if (keySecret && this.#get(SECRETS, ns, keySecret))
      await this.#request('kube', 'delete', () => this.#store.delete(SECRETS, ns, keySecret))
    const leaf = new X509Certificate(unb64(request.status?.certificate))
    const revision = Number(certificate.status?.revision ?? 0) + 1
    const conditions = ((certificate.status?.conditions ?? []) as Condition[]).filter(
      (c) => c.type !== 'Issuing' && c.type !== 'Ready',
    )
    const validity = {
      notBefore: new Date(leaf.validFrom).toISOString().replace(/\.\d+Z$/, 'Z'),
      notAfter: new Date(leaf.validTo).toISOString().replace(/\.\d+Z$/, 'Z'),
    }
    const readyCondition: Condition = {
      type: 'Ready',
      status: 'True',
      reason: 'Ready',
      message: 'Certificate is up to date and has not expired',
      lastTransitionTime: now(),
      observedGeneration: certificate.metadata.generation ?? 1,
    }
    const updateStatus = (next: Obj) =>
      this.#request('certManager', 'update', () =>
        this.#store.update(CERTIFICATES, ns, name, next, 'status'),
      ) as Promise<Obj>
    if (!this.options.serverSideApply) {
      await updateStatus({
        ...certificate,
        status: { conditions: [...conditions, readyCondition], revision, ...validity },
      })
      return
    }
    // the issuing controller applies Issuing=False/Issued with the revision; the readiness controller then
    // sets Ready=True (and the validity) in a write of its own
    const issued: Condition = {
      type: 'Issuing',
      status: 'False',
      reason: 'Issued',
      message: 'The certificate has been successfully issued',
      lastTransitionTime: now(),
      observedGeneration: certificate.metadata.generation ?? 1,
    }
    const applied = await updateStatus({
      ...certificate,
      status: { ...certificate.status, conditions: [...conditions, issued], revision },
    })
    const current = this.#get(CERTIFICATES, ns, name) ?? applied
    const others = ((current.status?.conditions ?? []) as Condition[]).filter((c) => c.type !== 'Ready')
    await updateStatus({
      ...current,
      status: { ...current.status, conditions: [...others, readyCondition], ...validity },
    })
  }

  async #failed(ns: string, name: string, certificate: Obj, ready: Condition): Promise<void> {
    // as cert-manager's issuing controller: the request's reason (Denied, Failed, InvalidRequest, an
    // issuer-specific one) becomes the Certificate's Issuing=False reason
    const failed = setCondition(certificate, {
      type: 'Issuing',
      status: 'False',
      reason: ready.reason,
      message: `The certificate request has failed to complete and will be retried: ${ready.message}`,
    })
    await this.#request('certManager', 'update', () =>
      this.#store.update(
        CERTIFICATES,
        ns,
        name,
        { ...failed, status: { ...failed.status, lastFailureTime: now(), failedIssuanceAttempts: 1 } },
        'status',
      ),
    )
  }

  /**
   * #adopt is cert-manager's behaviour for a Secret that already holds a valid certificate for the spec (same
   * commonName, same key algorithm, not expired): no new issuance; the Certificate becomes Ready from it,
   * without status.revision. Returns true when it adopted.
   */
  async #adopt(certificate: Obj): Promise<boolean> {
    const ns = certificate.metadata.namespace ?? ''
    const secret = this.#get(SECRETS, ns, certificate.spec.secretName)
    const validity = adoptable(certificate.spec, secret?.data as Record<string, string> | undefined)
    if (!validity) return false
    const ready = setCondition(certificate, {
      type: 'Ready',
      status: 'True',
      reason: 'Ready',
      message: 'Certificate is up to date and has not expired',
      observedGeneration: certificate.metadata.generation ?? 1,
    })
    await this.#request('certManager', 'update', () =>
      this.#store.update(
        CERTIFICATES,
        ns,
        certificate.metadata.name ?? '',
        {
          ...ready,
          status: {
            ...ready.status,
            notBefore: validity.notBefore.toISOString().replace(/\.\d+Z$/, 'Z'),
            notAfter: validity.notAfter.toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        },
        'status',
      ),
    )
    return true
  }

  /** #secretDeleted: a Certificate whose Secret is deleted is re-issued (Ready=False, reason DoesNotExist). */
  async #secretDeleted(ns: string, name: string, secretName: string): Promise<void> {
    const c = this.#get(CERTIFICATES, ns, name)
    if (!c || c.spec.secretName !== secretName || this.#get(SECRETS, ns, secretName)) return
    const conditions = ((c.status?.conditions ?? []) as Condition[]).filter(
      (x) => x.type !== 'Ready' && x.type !== 'Issuing',
    )
    const notReady = setCondition(
      { ...c, status: { ...c.status, conditions } },
      {
        type: 'Ready',
        status: 'False',
        reason: 'DoesNotExist',
        message: 'Issuing certificate as Secret does not exist',
        observedGeneration: c.metadata.generation ?? 1,
      },
    )
    await this.#request('certManager', 'update', () =>
      this.#store.update(CERTIFICATES, ns, name, notReady, 'status'),
    )
  }
}
