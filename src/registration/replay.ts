import { createHash } from 'node:crypto'
import { certificatesFromPem } from '../pki/pem.js'
import { RegistrationError } from '../protocol/errors.js'
import type { IssuedReply } from '../protocol/messages.js'
import type { DeviceRecord } from '../registry/registry.js'
import type { PresentedCertificate } from './deny-list.js'
import { recordedIssuance } from './lifecycle-policy.js'
import { issuedReply } from './replies.js'

/** ReplaySettings are what a replayed answer is checked against and built with. */
export interface ReplaySettings {
  /** How long after an issuance a retry of its request is still that request's retry (replyCacheSeconds). */
  readonly retryWindowMs: number
  readonly extraTrustPem: string
  readonly productionUrl: string | undefined
  /** Why the deny list in force refuses a certificate now, or undefined. */
  readonly denied?: ((cert: PresentedCertificate) => string | undefined) | undefined
}

/**
 * recordedAnswer is the answer the registry holds for this very request: the identity's newest certificate carries
 * its request hash, was issued within the retry window, and is still active — rebuilt from the recorded chain when
 * the device made the key (CSR mode). A server-key answer is not rebuilt: its key was never recorded, and the
 * retry gets a new certificate that supersedes it (the lifecycle step finds it as the retry's earlier issuance).
 */
export function recordedAnswer(
  device: DeviceRecord | undefined,
  key: string,
  requestId: string | undefined,
  settings: ReplaySettings,
  now = new Date(),
): IssuedReply | undefined {
  const newest = recordedIssuance(device, key, settings.retryWindowMs, now)
  if (newest?.state !== 'active' || newest.keySource !== 'device' || newest.certificatePem === undefined)
    return undefined
  return issuedReply(
    {
      certificatePem: newest.certificatePem,
      caCertificatesPem: newest.caCertificatesPem ?? '',
      serialNumber: newest.serialNumber,
      notBefore: newest.notBefore,
      notAfter: newest.notAfter,
    },
    { requestId, extraTrustPem: settings.extraTrustPem, productionUrl: settings.productionUrl },
  )
}

/** checkNotDenied refuses (NOT_AUTHORIZED) an earlier answer whose certificate the deny list names; else true. */
export function checkNotDenied(identity: string, reply: IssuedReply, settings: ReplaySettings): true {
  const der = certificatesFromPem(reply.certificate)[0]
  const denied = settings.denied?.({
    identity,
    serialNumber: reply.serialNumber,
    sha256Fingerprint: der ? createHash('sha256').update(der).digest('hex') : '',
  })
  if (denied !== undefined) throw new RegistrationError('NOT_AUTHORIZED', denied)
  return true
}
