import type { TLSSocket } from 'node:tls'
import { isSafeIdentity } from '../protocol/topics.js'

/** IdentitySource says where in the client certificate the device identity is read. */
export type IdentitySource = 'subject-cn' | 'san-dns' | 'san-uri'

/** DeviceIdentity is who a connection is, as proven by its verified client certificate. */
export interface DeviceIdentity {
  readonly id: string
}

/** IdentityResult is an identity, or why a connection has none. */
export type IdentityResult =
  | { readonly ok: true; readonly identity: DeviceIdentity }
  | { readonly ok: false; readonly reason: string }

function fromSubjectAltName(altNames: string | undefined, prefix: 'DNS:' | 'URI:'): string[] {
  return (altNames ?? '')
    .split(', ')
    .filter((n) => n.startsWith(prefix))
    .map((n) => n.slice(prefix.length))
}

/**
 * identityOf reads the device identity from a TLS socket whose client certificate the TLS layer has already
 * verified against the factory CA bundle. It is the only reader of the peer certificate.
 */
export function identityOf(socket: TLSSocket, source: IdentitySource): IdentityResult {
  if (!socket.authorized) return { ok: false, reason: 'client certificate not verified' }
  // the X509Certificate view reads only the fields asked for, unlike getPeerCertificate()'s full object
  const cert = socket.getPeerX509Certificate()
  if (!cert) return { ok: false, reason: 'no client certificate' }
  let candidates: string[]
  if (source === 'subject-cn') {
    candidates = cert.subject
      .split('\n')
      .filter((line) => line.startsWith('CN='))
      .map((line) => line.slice(3))
  } else {
    candidates = fromSubjectAltName(cert.subjectAltName, source === 'san-dns' ? 'DNS:' : 'URI:')
  }
  if (candidates.length !== 1) {
    return {
      ok: false,
      reason: `client certificate must carry exactly one ${source}, found ${candidates.length}`,
    }
  }
  const id = candidates[0] ?? ''
  if (!isSafeIdentity(id))
    return { ok: false, reason: 'identity has characters that are not allowed in topics' }
  return { ok: true, identity: { id } }
}
