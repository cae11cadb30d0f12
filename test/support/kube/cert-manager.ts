import { randomBytes, X509Certificate } from 'node:crypto'
import { adoptable } from './adopt.js'
import { RateLimiter } from './rate-limiter.js'
import { findResource, type ResourceType } from './resources.js'
import { buildCsr, generatePrivateKey, signCsr } from './signer.js'
import type { KubeObject, ObjectStore, WatchEvent } from './store.js'

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
  /** The controller's client-side rate limit; default cert-manager's (20 QPS, burst 50). */
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

/**
 * EmulatedCertManager plays cert-manager's controllers against the store, with the transitions the real ones
 * make (each its own MODIFIED event): CA Issuer readiness; CertificateRequest approval, then issuance or
 * Denied/Failed; Certificate issuing through a temporary key Secret and a `<name>-<revision>` request to the
 * TLS Secret with cert-manager's keys and annotations.
 */
export class EmulatedCertManager {
  readonly options: EmulatedCertManagerOptions
  readonly #store: ObjectStore
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #listener = (event: WatchEvent): void => this.#schedule(() => this.#react(event), 0)

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
    for (const t of this.#timers) clearTimeout(t)
  }

  readonly #limiter = new RateLimiter(() => this.options.rateLimit)

  /** writes counts the tokens the controller spent: one per reconcile step that may write (20 QPS / 50 burst). */
  get writes(): number {
    return this.#limiter.writes
  }

  #schedule(task: () => Promise<void> | void, delay: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      const wait = this.#limiter.wait()
      if (wait > 0) return this.#schedule(task, wait)
      // a conflicting write (thrown at once, or rejected) is retried on the next event, as controllers do
      new Promise<void>((resolve) => resolve(task())).catch(() => {})
    }, delay)
    this.#timers.add(timer)
  }

  #get(type: ResourceType, ns: string, name: string): Obj | undefined {
    try {
      return this.#store.get(type, ns, name) as Obj
    } catch {
      return undefined
    }
  }

  async #react(event: WatchEvent): Promise<void> {
    if (event.type === 'DELETED') {
      if (event.resource === SECRETS) this.#secretDeleted(event.object)
      return
    }
    const ns = event.object.metadata.namespace ?? ''
    const current = this.#get(event.resource, ns, event.object.metadata.name ?? '')
    if (!current) return
    if (event.resource === ISSUERS || event.resource === CLUSTER_ISSUERS) {
      this.#reconcileIssuer(current)
      // a request waiting for its issuer is requeued when the issuer changes, as cert-manager does
      for (const request of this.#store.list(
        REQUESTS,
        ns,
        () => true,
        () => true,
      ))
        await this.#reconcileRequest(request as Obj)
    } else if (event.resource === SECRETS) {
      for (const issuer of this.#store.list(
        ISSUERS,
        ns,
        () => true,
        () => true,
      ))
        this.#reconcileIssuer(issuer as Obj)
      if (ns === CLUSTER_RESOURCE_NAMESPACE)
        for (const issuer of this.#store.list(
          CLUSTER_ISSUERS,
          undefined,
          () => true,
          () => true,
        ))
          this.#reconcileIssuer(issuer as Obj)
    } else if (event.resource === REQUESTS) await this.#reconcileRequest(current)
    else if (event.resource === CERTIFICATES) await this.#reconcileCertificate(current)
  }

  #caSecret(issuer: Obj): Obj | undefined {
    const ns =
      issuer.kind === 'ClusterIssuer' ? CLUSTER_RESOURCE_NAMESPACE : (issuer.metadata.namespace ?? '')
    return this.#get(SECRETS, ns, issuer.spec?.ca?.secretName ?? '')
  }

  #reconcileIssuer(issuer: Obj): void {
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
    this.#store.update(
      issuer.kind === 'ClusterIssuer' ? CLUSTER_ISSUERS : ISSUERS,
      issuer.metadata.namespace ?? '',
      issuer.metadata.name ?? '',
      setCondition(issuer, { ...condition, observedGeneration: issuer.metadata.generation ?? 1 }),
      'status',
    )
  }

  async #reconcileRequest(request: Obj): Promise<void> {
    const ns = request.metadata.namespace ?? ''
    const name = request.metadata.name ?? ''
    const ready = conditionOf(request, 'Ready')
    if (ready?.status === 'True' || ready?.reason === 'Failed' || ready?.reason === 'Denied') return
    if (conditionOf(request, 'Denied')) {
      this.#store.update(
        REQUESTS,
        ns,
        name,
        setCondition(request, {
          type: 'Ready',
          status: 'False',
          reason: 'Denied',
          message: 'The CertificateRequest was denied by an approval controller',
        }),
        'status',
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
      this.#store.update(REQUESTS, ns, name, setCondition(request, condition), 'status')
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
      this.#store.update(
        REQUESTS,
        ns,
        name,
        setCondition(request, { type: 'Ready', status: 'False', reason: 'Pending', message }),
        'status',
      )
      return
    }
    this.#schedule(() => this.#sign(ns, name, issuer), this.options.issuanceDelayMs)
  }

  async #sign(ns: string, name: string, issuer: Obj): Promise<void> {
    const request = this.#get(REQUESTS, ns, name)
    if (!request || conditionOf(request, 'Ready')?.status === 'True' || request.status?.certificate) return
    if (this.options.fail(request)) {
      const failed = setCondition(request, {
        type: 'Ready',
        status: 'False',
        reason: this.options.failReason,
        message: 'Failed to sign certificate: injected failure',
      })
      this.#store.update(
        REQUESTS,
        ns,
        name,
        { ...failed, status: { ...failed.status, failureTime: now() } },
        'status',
      )
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
    this.#store.update(
      REQUESTS,
      ns,
      name,
      {
        ...issued,
        status: {
          ...issued.status,
          certificate: b64(certPem),
          ca: b64(caPem),
        },
      },
      'status',
    )
  }

  async #reconcileCertificate(certificate: Obj): Promise<void> {
    const ns = certificate.metadata.namespace ?? ''
    const name = certificate.metadata.name ?? ''
    const generation = certificate.metadata.generation ?? 1
    const ready = conditionOf(certificate, 'Ready')
    if (ready?.status === 'True' && ready.observedGeneration === generation) return
    const issuing = conditionOf(certificate, 'Issuing')
    if (issuing?.status === 'False') return // failed: the real controller backs off for an hour
    const revision = Number(certificate.status?.revision ?? 0) + 1
    const requestName = `${name}-${revision}`
    if (!issuing && this.#adopt(certificate)) return
    if (!issuing) {
      const keySecret = `${name}-${randomBytes(3).toString('hex').slice(0, 5)}`
      const started = setCondition(certificate, {
        type: 'Issuing',
        status: 'True',
        reason: 'DoesNotExist',
        message: 'Issuing certificate as Secret does not exist',
      })
      this.#store.update(
        CERTIFICATES,
        ns,
        name,
        { ...started, status: { ...started.status, nextPrivateKeySecretName: keySecret } },
        'status',
      )
      const keyPem = generatePrivateKey(certificate.spec.privateKey)
      this.#store.create(SECRETS, ns, {
        metadata: { name: keySecret, labels: { 'cert-manager.io/next-private-key': 'true' } },
        data: { 'tls.key': b64(keyPem) },
      })
      const csr = await buildCsr(keyPem, certificate.spec)
      this.#store.create(REQUESTS, ns, {
        apiVersion: 'cert-manager.io/v1',
        kind: 'CertificateRequest',
        metadata: {
          name: requestName,
          annotations: {
            'cert-manager.io/certificate-name': name,
            'cert-manager.io/certificate-revision': String(revision),
            'cert-manager.io/private-key-secret-name': keySecret,
          },
          ownerReferences: [
            {
              apiVersion: 'cert-manager.io/v1',
              kind: 'Certificate',
              name,
              uid: certificate.metadata.uid ?? '',
              controller: true,
            },
          ],
        },
        spec: {
          request: b64(csr),
          usages: certificate.spec.usages,
          duration: certificate.spec.duration,
          issuerRef: certificate.spec.issuerRef,
        },
      })
      this.#watchRequest(ns, name, requestName)
    }
  }

  #watchRequest(ns: string, certName: string, requestName: string): void {
    const onEvent = (event: WatchEvent): void => {
      if (
        event.resource !== REQUESTS ||
        event.object.metadata.name !== requestName ||
        event.type === 'DELETED'
      )
        return
      const request = event.object as Obj
      const ready = conditionOf(request, 'Ready')
      if (ready?.status === 'True') this.#schedule(() => this.#complete(ns, certName, request), 0)
      else if (ready?.status === 'False' && ready.reason !== 'Pending' && ready.reason !== undefined)
        this.#schedule(() => this.#failed(ns, certName, ready), 0)
      else return
      this.#store.off('event', onEvent)
    }
    this.#store.on('event', onEvent)
  }

  #complete(ns: string, name: string, request: Obj): void {
    const certificate = this.#get(CERTIFICATES, ns, name)
    if (!certificate) return
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
    if (existing)
      this.#store.update(SECRETS, ns, spec.secretName, {
        ...secret,
        metadata: { ...secret.metadata, resourceVersion: existing.metadata.resourceVersion },
      } as KubeObject)
    else this.#store.create(SECRETS, ns, secret as KubeObject)
    if (keySecret && this.#get(SECRETS, ns, keySecret)) this.#store.delete(SECRETS, ns, keySecret)
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
    if (!this.options.serverSideApply) {
      this.#store.update(
        CERTIFICATES,
        ns,
        name,
        { ...certificate, status: { conditions: [...conditions, readyCondition], revision, ...validity } },
        'status',
      )
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
    const applied = this.#store.update(
      CERTIFICATES,
      ns,
      name,
      { ...certificate, status: { ...certificate.status, conditions: [...conditions, issued], revision } },
      'status',
    ) as Obj
    this.#schedule(() => {
      const current = this.#get(CERTIFICATES, ns, name) ?? applied
      const others = ((current.status?.conditions ?? []) as Condition[]).filter((c) => c.type !== 'Ready')
      this.#store.update(
        CERTIFICATES,
        ns,
        name,
        { ...current, status: { ...current.status, conditions: [...others, readyCondition], ...validity } },
        'status',
      )
    }, 0)
  }

  #failed(ns: string, name: string, ready: Condition): void {
    const certificate = this.#get(CERTIFICATES, ns, name)
    if (!certificate) return
    // as cert-manager's issuing controller: the request's reason (Denied, Failed, InvalidRequest, an
    // issuer-specific one) becomes the Certificate's Issuing=False reason
    const failed = setCondition(certificate, {
      type: 'Issuing',
      status: 'False',
      reason: ready.reason,
      message: `The certificate request has failed to complete and will be retried: ${ready.message}`,
    })
    this.#store.update(
      CERTIFICATES,
      ns,
      name,
      { ...failed, status: { ...failed.status, lastFailureTime: now(), failedIssuanceAttempts: 1 } },
      'status',
    )
  }

  /**
   * #adopt is cert-manager's behaviour for a Secret that already holds a valid certificate for the spec (same
   * commonName, same key algorithm, not expired): no new issuance; the Certificate becomes Ready from it,
   * without status.revision. Returns true when it adopted.
   */
  #adopt(certificate: Obj): boolean {
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
    )
    return true
  }

  /** #secretDeleted: a Ready Certificate whose Secret is deleted is re-issued (Issuing, reason DoesNotExist). */
  #secretDeleted(secret: KubeObject): void {
    const ns = secret.metadata.namespace ?? ''
    for (const c of this.#store.list(
      CERTIFICATES,
      ns,
      () => true,
      () => true,
    ) as Obj[]) {
      if (c.spec.secretName !== secret.metadata.name) continue
      const conditions = ((c.status?.conditions ?? []) as Condition[]).filter(
        (x) => x.type !== 'Ready' && x.type !== 'Issuing',
      )
      this.#schedule(() => {
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
        this.#store.update(CERTIFICATES, ns, c.metadata.name ?? '', notReady, 'status')
      }, 0)
    }
  }
}
