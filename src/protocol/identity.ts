// Who a connection is: the shared identity types, below both broker/ (which reads them from the peer certificate)
// and registration/ (which decides on them), so that neither imports the other.

/** PresentedCredential is the verified client certificate a connection presented, as the lifecycle needs it. */
export interface PresentedCredential {
  /** A factory certificate, or an operational one (a renewal). */
  readonly kind: 'factory' | 'operational'
  /** Serial number, lower-case hex. */
  readonly serialNumber: string
  /** SHA-256 of the certificate DER, lower-case hex. */
  readonly sha256Fingerprint: string
  /** The certified public key (SubjectPublicKeyInfo DER), so that a renewal can require a new one. */
  readonly spki: Buffer
}

/** DeviceIdentity is who a connection is, as proven by its verified client certificate. */
export interface DeviceIdentity {
  readonly id: string
  /** The certificate it presented (absent only where no socket was read, e.g. in unit tests). */
  readonly credential?: PresentedCredential | undefined
}

/** RequestConnection is who was there to hear the answer when a request came, as far as the answer needs it. */
export interface RequestConnection {
  /**
   * true while at least one of the identity's connections that were up when the request came is still up (a
   * reconnect is another connection, which missed what was sent in between).
   */
  readonly open: boolean
}
