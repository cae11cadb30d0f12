/**
 * IssuanceEvent says which lifecycle step issued a certificate: a first registration, a factory-certificate
 * re-registration (it supersedes), or a renewal (with the operational certificate, or by the owning gateway).
 */
export type IssuanceEvent = 'registered' | 're-registered' | 'renewed'

/** ExpiryState is where an identity's newest certificate stands: the four counts an operator looks at. */
export type ExpiryState = 'active' | 'expiring' | 'expired' | 'pending' | 'revoked'

/** KeySource says who made the certified key: the device (CSR) or the bridge (server-side key). */
export type KeySource = 'device' | 'bridge'

/**
 * CertificateState is the life of one issued certificate. `active` on issuance; a later issuance for the same
 * identity makes the earlier ones `superseded` (with `supersededBy`); `revoked` is for renewal and revocation.
 * `pending` is a certificate of an AWS create call until RegisterThing activates it (AWS's PENDING_ACTIVATION): not
 * a working credential (the CRL holds it); a later issuance or its token's expiry revokes it.
 */
export type CertificateState = 'active' | 'superseded' | 'revoked' | 'pending'

/** NewIssuance is what the registration path records for every certificate it hands out. */
export interface NewIssuance {
  readonly identity: string
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly keySource: KeySource
  readonly issuer: string
  readonly sha256Fingerprint: string
  readonly issuedAt: Date
  /** The gateway that registered a downstream device; absent when the device registered itself. */
  readonly registeredBy?: string | undefined
  /** The requestId of the request that obtained it, when there was one. */
  readonly requestId?: string | undefined
  /**
   * The hash of the request that obtained it (identity, requestId and content after defaults; see
   * idempotency.ts): the only proof that a later request is a retry of this one.
   */
  readonly requestHash?: string | undefined
  /**
   * The lifecycle step. It decides the owner: an issuance for a gateway makes that gateway the owner, a device's
   * renewal with its operational certificate keeps the owner, and a device's registration with its factory
   * certificate leaves it with none (it registers itself).
   */
  readonly event?: IssuanceEvent | undefined
  /** The certificate chain as issued (PEM, public): a retry of the same CSR-mode request is answered from it. */
  readonly certificatePem?: string | undefined
  /** The issuer's CA certificates as issued (PEM, public). */
  readonly caCertificatesPem?: string | undefined
  /** The production endpoint the registration hook assigned to this issuance: every answer of it carries it. */
  readonly endpoint?: string | undefined
  /** Which bridge state directory committed it (its audit log is completed from its own records). */
  readonly writer?: string | undefined
  /** A retried request's new certificate: the serial of the one it replaces (its key died with a process). */
  readonly supersedes?: string | undefined
  /** Recorded `pending`: an AWS create call's certificate (RegisterThing activates it); absent: `active`. */
  readonly pending?: boolean | undefined
}

/** Provisioning is what RegisterThing recorded when it activated a pending certificate (schema 5). */
export interface Provisioning {
  readonly templateName: string
  readonly thingName: string
  /** The hash of the template name and parameters: the same RegisterThing again gets the same answer. */
  readonly provisionHash: string
  readonly deviceConfiguration: Readonly<Record<string, string>>
}

/** IssuanceRecord is one recorded certificate. */
export interface IssuanceRecord extends NewIssuance {
  readonly state: CertificateState
  /** Serial number of the certificate that replaced this one, when superseded. */
  readonly supersededBy?: string | undefined
  /** When the certificate was revoked (state `revoked`). */
  readonly revokedAt?: Date | undefined
  /** Why it was revoked: an RFC 5280 CRLReason name (e.g. `keyCompromise`); see Revocation. */
  readonly revocationReason?: RevocationReason | undefined
  /** The SHA-256 (hex) of its AWS ownership token, never the token itself. */
  readonly ownershipTokenSha256?: string | undefined
  /** When that token stops working (a pending certificate is then revoked). */
  readonly tokenExpiresAt?: Date | undefined
  /** What RegisterThing recorded when it activated it. */
  readonly provisioning?: Provisioning | undefined
}

/** REVOCATION_REASONS are the RFC 5280 (5.3.1) CRLReason names the bridge records, with their codes. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const

/** RevocationReason is one of REVOCATION_REASONS. */
export type RevocationReason = keyof typeof REVOCATION_REASONS

/** Revocation is what `revoke` records: when and why. */
export interface Revocation {
  readonly at: Date
  readonly reason: RevocationReason
}

/** DeviceRecord is an identity the bridge has issued for, with its owner and every certificate, newest first. */
export interface DeviceRecord {
  readonly identity: string
  /**
   * The gateway that owns this identity (registered it last, kept through the device's own renewals), or undefined
   * for a device that registered itself with its factory certificate.
   */
  readonly owner?: string | undefined
  readonly firstIssuedAt: Date
  readonly lastIssuedAt: Date
  /** When an operator last reset the identity (`devices reset`): one factory re-registration is allowed after it. */
  readonly resetAt?: Date | undefined
  readonly certificates: readonly IssuanceRecord[]
}

/** DeviceSummary is one row of `devices list`. */
export interface DeviceSummary {
  readonly identity: string
  readonly owner?: string | undefined
  readonly lastIssuedAt: Date
  readonly serialNumber: string
  readonly notAfter: Date
  readonly state: CertificateState
}

/**
 * RecordExpectation fences a record (exactly once across processes): the serial number of the identity's newest
 * certificate as the caller read it with `device(identity, { certificates: 1 })`, undefined when it had none.
 */
export interface RecordExpectation {
  readonly newest: string | undefined
}

/**
 * RecordConflict rejects a record whose expectation no longer holds: another record of the identity committed
 * since the caller read it. Nothing of the record was written.
 */
export class RecordConflict extends Error {
  override readonly name = 'RecordConflict'
  constructor(
    /** The identity recorded for. */
    readonly identity: string,
    /** The serial of the identity's newest certificate the registry holds now (undefined: none). */
    readonly newest: string | undefined,
    expected: string | undefined,
  ) {
    super(
      `the registry's newest certificate of ${identity} is ${newest ?? 'none'}, not ${expected ?? 'none'}`,
    )
  }
}

/** ListOptions filter `list`. */
export interface ListOptions {
  readonly owner?: string
  readonly limit?: number
}

/**
 * Registry is the durable record of identities, certificates and owners. It is asynchronous so that a shared
 * database can implement it for replicas; the embedded default is SQLite (sqlite-registry.ts).
 */
export interface Registry {
  /**
   * record stores an issuance durably; earlier active certificates of the identity become superseded by it. With
   * `expect`, it first checks in the same transaction that the identity's newest certificate (as `device` orders
   * them) is still `expect.newest`, and otherwise writes nothing and rejects with RecordConflict.
   */
  record(issuance: NewIssuance, expect?: RecordExpectation): Promise<void>
  /**
   * syncs counts the durable syncs this process's registry performed for records (SQLite: fdatasyncs of the group
   * commit; PostgreSQL: committed record transactions, one WAL flush each).
   */
  readonly syncs: number
  /** ownerOf is the gateway that owns an identity, or undefined (unknown, or registers itself). */
  ownerOf(identity: string): Promise<string | undefined>
  /** countOwned counts the identities a gateway owns (its quota). */
  countOwned(gateway: string): Promise<number>
  /**
   * device returns an identity with its certificates, newest first: all of them, or the newest `certificates`
   * (what a registration reads, so its cost does not grow with the identity's history).
   */
  device(identity: string, options?: { readonly certificates?: number }): Promise<DeviceRecord | undefined>
  certificate(serialNumber: string): Promise<IssuanceRecord | undefined>
  /** list returns identities with their newest certificate, most recently issued first. */
  list(options?: ListOptions): Promise<DeviceSummary[]>
  /** setState changes a certificate's state (for revocation); false when the serial is unknown. */
  setState(serialNumber: string, state: CertificateState): Promise<boolean>
  /**
   * revoke marks a certificate revoked with when and why (a revoked certificate stays revoked: revoking it again
   * keeps the first date and reason); false when the serial is unknown.
   */
  revoke(serialNumber: string, revocation: Revocation): Promise<boolean>
  /** revoked lists every revoked certificate (what a CRL lists), oldest revocation first. */
  revoked(): Promise<IssuanceRecord[]>
  /** reset records an operator reset of an identity (see DeviceRecord.resetAt); false when it is unknown. */
  reset(identity: string, at: Date): Promise<boolean>
  /** committedSince lists the certificates `writer` committed at or after `since`, in commit order. */
  committedSince(writer: string, since: Date): Promise<IssuanceRecord[]>
  /**
   * setOwnershipToken gives a pending certificate a new ownership token (its SHA-256) and expiry, replacing the one
   * it had; false when the certificate is not pending, or its token expired before `now` (it is not revived).
   */
  setOwnershipToken(serialNumber: string, tokenSha256: string, expiresAt: Date, now: Date): Promise<boolean>
  /** byOwnershipToken is the certificate whose ownership token has this SHA-256. */
  byOwnershipToken(tokenSha256: string): Promise<IssuanceRecord | undefined>
  /**
   * activate makes a pending certificate active with what RegisterThing recorded, only if it is still pending with
   * this token unexpired at `now` (the conditional update is the "only once" across processes); false otherwise.
   */
  activate(serialNumber: string, tokenSha256: string, now: Date, provisioning: Provisioning): Promise<boolean>
  /**
   * expirePending revokes (cessationOfOperation) every pending certificate whose token expired before `now`, or that
   * has had none for `lifetimeMs` since its issuance; returns how many.
   */
  expirePending(now: Date, lifetimeMs: number): Promise<number>
  /** held lists the pending certificates (a CRL lists them on hold: certificateHold, reversible). */
  held(): Promise<IssuanceRecord[]>
  /** available, where the registry is a server (PostgreSQL), is false while it cannot be reached. */
  available?(): boolean
  close(): Promise<void>
  /**
   * expiryCounts counts identities by the ExpiryState of their newest certificate (expiryStateOf's rule), in one
   * aggregate query: what `list` and expiryCounts would say, without reading every row into the process.
   */
  expiryCounts(now: Date, withinMs: number): Promise<Record<ExpiryState, number>>
}
