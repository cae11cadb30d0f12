import { X509Certificate } from 'node:crypto'
import type { KubernetesObject } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import type { FlowContext } from './flow-context.js'
import type { CustomPlural } from './kube-api.js'
import { DEVICE_ID_ANNOTATION } from './names.js'
import { decodeBase64 } from './resources.js'

export interface ReconcileResult {
  readonly certificates: number
  readonly requests: number
  readonly secrets: number
}

const ageMs = (o: KubernetesObject): number =>
  Date.now() - Date.parse(String(o.metadata?.creationTimestamp ?? Number.NaN))

function serialOf(pem: string | undefined): string | undefined {
  try {
    return pem ? new X509Certificate(pem).serialNumber.toLowerCase() : undefined
  } catch {
    return undefined
  }
}

/**
 * reconcileLeftovers removes the bridge's labelled Certificates, CertificateRequests and key Secrets that no
 * registration is waiting on and that are older than `maxAgeMs` (the registration timeout): what a timeout,
 * a crash or a failed clean-up left behind, which cert-manager would otherwise renew forever. Each removal of
 * something that was issued is logged (audit) with the device id and serial; one failed delete never skips
 * the others. It reads the informers' caches, so it costs API calls only for what it deletes.
 */
export async function reconcileLeftovers(
  ctx: FlowContext,
  maxAgeMs: number,
  logger: Logger,
  signal: AbortSignal,
): Promise<ReconcileResult> {
  const { api, watchers, inFlight } = ctx
  const stale = (o: KubernetesObject, owner: string): boolean => !inFlight.has(owner) && ageMs(o) >= maxAgeMs
  const removed = { certificates: 0, requests: 0, secrets: 0 }
  const attempt = async (
    what: keyof ReconcileResult,
    plural: CustomPlural | 'secrets',
    o: KubernetesObject,
    serial?: string,
  ) => {
    const name = o.metadata?.name ?? ''
    try {
      await api.delete(plural, name, signal)
      removed[what]++
      const deviceId = o.metadata?.annotations?.[DEVICE_ID_ANNOTATION]
      logger.warn(
        { kind: what, name, deviceId, serial },
        serial ? 'removed a leftover that held an issued certificate' : 'removed a leftover',
      )
    } catch (err) {
      logger.warn({ err, kind: what, name }, 'could not remove a leftover; next resync retries')
    }
  }
  for (const certificate of watchers.certificates.list())
    if (stale(certificate, certificate.metadata?.name ?? ''))
      await attempt('certificates', 'certificates', certificate)
  for (const secret of watchers.secrets.list()) {
    const owner = (secret.metadata?.name ?? '').replace(/-tls$/, '')
    const certificate = watchers.certificates.get(owner)
    if (!stale(secret, owner) || (certificate && !stale(certificate, owner))) continue
    await attempt('secrets', 'secrets', secret, serialOf(decodeBase64(secret.data?.['tls.crt'])))
  }
  for (const request of watchers.requests.list()) {
    if (!stale(request, request.metadata?.name ?? '')) continue
    await attempt(
      'requests',
      'certificaterequests',
      request,
      serialOf(decodeBase64(request.status?.certificate)),
    )
  }
  if (removed.certificates + removed.requests + removed.secrets > 0)
    logger.info({ removed }, 'reconciled leftovers')
  return removed
}
