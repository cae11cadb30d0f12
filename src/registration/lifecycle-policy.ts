import type { Config } from '../config/load.js'
import type { IssuanceOrder } from '../issuers/issuer.js'
import { RegistrationError } from '../protocol/errors.js'
import type { DeviceIdentity, PresentedCredential } from '../protocol/identity.js'
import type { DeviceRecord, IssuanceRecord, Registry } from '../registry/registry.js'
import type { PresentedCertificate } from './deny-list.js'

/** LifecycleOptions are the lifecycle settings the service applies (docs/configuration.md), with the deny list. */
export type LifecycleOptions = Pick<Config['lifecycle'], 'reRegistration'> & {
  readonly renewal: Pick<
    Config['lifecycle']['renewal'],
    'windowFraction' | 'requireNewKey' | 'allowServerKey'
  >
  /** Why the deny list in force refuses an identity (and the certificate it presents) now, or undefined. */
  readonly denied?: ((cert: PresentedCertificate) => string | undefined) | undefined
}

const refuse = (message: string): RegistrationError => new RegistrationError('NOT_AUTHORIZED', message)

/** denialOf is why the deny list in force refuses an identity, or the certificate it presents, now. */
export function denialOf(
  denied: LifecycleOptions['denied'],
  identity: string,
  cert: Pick<PresentedCredential, 'serialNumber' | 'sha256Fingerprint'> | undefined,
): string | undefined {
  // the fields by name: spreading a credential would export its key (a getter)
  return denied?.({
    identity,
    serialNumber: cert?.serialNumber ?? '',
    sha256Fingerprint: cert?.sha256Fingerprint ?? '',
  })
}

/**
 * recordedIssuance is the registry's record of this very request, whose answer may have been lost: the identity's
 * newest certificate carries its request hash (idempotency.ts) and was issued within the retry window. Proven from
 * the durable record, never assumed: a request that only shares a requestId, or comes later, is judged afresh.
 */
export function recordedIssuance(
  device: DeviceRecord | undefined,
  requestHash: string,
  retryWindowMs: number,
  now = new Date(),
): IssuanceRecord | undefined {
  const newest = device?.certificates[0]
  if (newest?.requestHash !== requestHash) return undefined
  return now.getTime() - newest.issuedAt.getTime() < retryWindowMs ? newest : undefined
}

/**
 * checkRevokedCredential refuses a connection's operational certificate that is revoked (before anything is
 * answered, even a replay of an earlier answer).
 */
export async function checkRevokedCredential(
  registry: Registry | undefined,
  credential: PresentedCredential,
  identity: string,
): Promise<IssuanceRecord> {
  const record = await registry?.certificate(credential.serialNumber)
  if (!record)
    throw refuse('this certificate is not one the bridge issued; register with the factory certificate')
  if (record.identity !== identity) throw refuse('this certificate was issued to another identity')
  if (record.state === 'revoked') throw refuse('this certificate is revoked')
  // an AWS create call's certificate is no credential until RegisterThing activates it
  if (record.state === 'pending') throw refuse('this certificate is pending activation (RegisterThing)')
  return record
}

/** RenewedCertificate is the operational certificate a connection renews, with its record (not revoked). */
export interface RenewedCertificate {
  readonly credential: PresentedCredential
  readonly record: IssuanceRecord
}

/**
 * checkRenewal lets the connection's operational certificate be renewed for `order` when it is the identity's
 * newest, active certificate, the renewal window is open and the key rules hold; it returns the serial the new
 * certificate supersedes. One superseded by exactly `retryOf` (the issuance of this very request) is a retry whose
 * answer was lost, and is renewed again.
 */
export function checkRenewal(
  device: DeviceRecord | undefined,
  renewing: RenewedCertificate,
  order: IssuanceOrder,
  options: LifecycleOptions['renewal'],
  retryOf: string | undefined,
): string {
  const now = new Date()
  const { credential, record: current } = renewing
  const newest = device?.certificates[0]
  const retry =
    retryOf !== undefined &&
    current.state === 'superseded' &&
    current.supersededBy === retryOf &&
    newest?.serialNumber === retryOf &&
    newest.state === 'active'
  if (!retry && (current.state !== 'active' || newest?.serialNumber !== current.serialNumber)) {
    throw refuse('this certificate has been superseded; renew with the newest certificate')
  }
  const lifetime = current.notAfter.getTime() - current.notBefore.getTime()
  const opens = current.notAfter.getTime() - options.windowFraction * lifetime
  if (now.getTime() < opens) {
    throw new RegistrationError(
      'RENEWAL_NOT_DUE',
      `renewal opens at ${new Date(opens).toISOString()} (lifecycle.renewal.windowFraction)`,
      { retryAfterSeconds: Math.ceil((opens - now.getTime()) / 1000) },
    )
  }
  if (!order.csr && !options.allowServerKey) {
    throw refuse(
      'renewal needs a CSR: the bridge does not make keys for renewals (lifecycle.renewal.allowServerKey)',
    )
  }
  if (order.csr && options.requireNewKey && order.csr.spki.equals(credential.spki)) {
    throw new RegistrationError(
      'KEY_NOT_ALLOWED',
      'a renewal must certify a new key (lifecycle.renewal.requireNewKey)',
    )
  }
  // a retry's first answer (its key, in server-key mode) was lost: the new certificate replaces that one
  return retry ? (retryOf as string) : current.serialNumber
}

/**
 * checkReRegistration applies the re-registration policy to a factory-certificate registration and returns whether
 * the identity was known (the registration then supersedes). A retry of this very request (`retryOf`) is never a
 * re-registration; a gateway (`registeredBy`) renews a device it owns, or one its policy let it take over
 * (`takeOver`: transfer, adopt); a revoked identity is refused until an operator resets it, whatever the policy.
 */
export function checkReRegistration(
  device: DeviceRecord | undefined,
  policy: LifecycleOptions['reRegistration'],
  context: {
    retryOf?: string | undefined
    registeredBy?: string | undefined
    takeOver?: boolean | undefined
  },
): boolean {
  if (!device) return false
  const newest = device.certificates[0]
  const resetSince =
    device.resetAt !== undefined && device.resetAt >= (newest?.revokedAt ?? newest?.issuedAt ?? 0)
  if (newest?.state === 'revoked' && !resetSince && !lapsed(newest)) {
    throw refuse('this identity is revoked; an operator must reset it (registration-bridge devices reset)')
  }
  // a certificate the device can still use: active (not superseded nor revoked), unexpired
  const valid = newest?.state === 'active' && newest.notAfter > new Date()
  if (!valid || newest.serialNumber === context.retryOf) return true
  if (context.registeredBy !== undefined && (device.owner === context.registeredBy || context.takeOver))
    return true
  if (policy === 'allow') return true
  if (policy === 'after-reset' && device.resetAt !== undefined && device.resetAt >= device.lastIssuedAt)
    return true
  throw refuse(
    policy === 'refuse'
      ? 'this identity already holds a valid operational certificate: renew with it instead of registering again'
      : 'this identity already holds a valid operational certificate: renew with it, or ask an operator to reset it',
  )
}

/**
 * lapsed tells whether a revoked certificate is an AWS create call's that never got its RegisterThing (its token
 * expired: cessationOfOperation, nothing recorded): the identity is not revoked, and may call the create API again.
 */
const lapsed = (record: IssuanceRecord): boolean =>
  record.revocationReason === 'cessationOfOperation' &&
  record.ownershipTokenSha256 !== undefined &&
  record.provisioning === undefined

/**
 * connectDenial says why a connection is refused at CONNECT: its identity or certificate is on the deny list in
 * force, or it presents an operational certificate this bridge did not issue to that identity, or revoked (looked
 * up in the registry: a promise, which rejects when the registry cannot answer).
 */
export function connectDenial(
  denied: (cert: PresentedCertificate) => string | undefined,
  registry: Registry,
  identity: DeviceIdentity,
): string | undefined | Promise<string | undefined> {
  const c = identity.credential
  if (!c) return undefined
  const listed = denialOf(denied, identity.id, c)
  if (listed !== undefined || c.kind !== 'operational') return listed
  // an operational certificate is the identity it was issued to, whatever else its names say: with
  // identity.source san-dns or san-uri, a certificate issued to one identity can carry names that read as
  // another's, and must never act as that one (connect, subscribe to its replies, send its batches)
  return checkRevokedCredential(registry, c, identity.id).then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof RegistrationError) return err.message
      throw err
    },
  )
}
