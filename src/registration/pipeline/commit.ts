import { RegistrationError } from '../../protocol/errors.js'
import { type NewIssuance, RecordConflict } from '../../registry/registry.js'
import { recordedIssuance } from '../lifecycle-policy.js'
import { fingerprintOf, recordedAnswer } from '../replies.js'
import type { Done, Pipeline, Registration, Step } from './registration.js'

/**
 * commit: the one durable record of the issuance (certificate, request hash, event, what it supersedes), then its
 * audit line. Only the lease's holder commits, and only onto the record it read: the registry refuses a commit
 * whose identity got another certificate since (RecordConflict, checked in the commit's transaction), so a process
 * paused or cut off past its lease can never add a second certificate nor answer against the committed one.
 */
export const commit: Step = async (p, r, path) => {
  const { order, credentials } = r
  if (!order || !credentials) throw new Error('commit before issue')
  if (!r.lease?.held()) return { silent: 'the lease ran out before the commit' }
  const started = performance.now()
  const entry: NewIssuance = {
    identity: r.identity,
    serialNumber: credentials.serialNumber,
    notBefore: credentials.notBefore,
    notAfter: credentials.notAfter,
    keySource: order.csr ? 'device' : 'bridge',
    issuer: p.issuer.name,
    sha256Fingerprint: fingerprintOf(credentials.certificatePem),
    issuedAt: new Date(),
    registeredBy: path.registeredBy,
    requestId: r.request.requestId,
    requestHash: r.key,
    event: r.lifecycle?.event,
    supersedes: r.lifecycle?.supersedes,
    // public: a retry of the same CSR-mode request is answered from them; a key is never recorded
    certificatePem: credentials.certificatePem,
    caCertificatesPem: credentials.caCertificatesPem,
    endpoint: r.endpoint,
    writer: p.audit.writer,
    ...(path.issuedState === 'pending' ? { pending: true } : {}),
  }
  try {
    await p.registry.record(entry, { newest: r.device?.certificates[0]?.serialNumber })
  } catch (err) {
    if (err instanceof RecordConflict) return conflicted(p, r, path.issuedState)
    throw err
  }
  p.observer?.auditAppended((performance.now() - started) / 1000)
  p.audit.committed(entry)
  r.log.info(
    { requestId: entry.requestId, serialNumber: entry.serialNumber },
    entry.event === 'renewed' ? 'certificate renewed' : 'certificate issued',
  )
}

/**
 * conflicted: another process committed for the identity while this one issued (it held the lease after this one
 * lost it). This request's own record is its answer: replayed in CSR mode, answered by its committer in server-key
 * mode (the key is there); any other record makes this a request to retry.
 */
async function conflicted(p: Pipeline, r: Registration, state?: 'pending'): Promise<Done> {
  const device = await p.registry.device(r.identity, { certificates: 1 })
  const recorded = recordedAnswer(p, device, r, state)
  if (recorded) return { reply: recorded, outcome: 'replayed' }
  if (recordedIssuance(device, r.key as string, p.retryWindowMs))
    return { silent: 'another process committed this request' }
  throw new RegistrationError(
    'REGISTRATION_IN_PROGRESS',
    'another registration of this identity was committed meanwhile; retry',
  )
}
