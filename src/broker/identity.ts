import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { Config } from '../config/load.js'
import { certificateNames } from '../pki/names.js'
import type { DeviceIdentity, PresentedCredential } from '../protocol/identity.js'
import { isSafeIdentity } from '../protocol/topics.js'

/** IdentitySource is the `identity` settings: where in the client certificate the identity is read. */
export type IdentitySource = Config['identity']

/** IdentityResult is an identity, or why a connection has none. */
export type IdentityResult =
  | { readonly ok: true; readonly identity: DeviceIdentity }
  | { readonly ok: false; readonly reason: string }

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const ANY_EKU = '2.5.29.37.0'
const refuse = (reason: string): IdentityResult => ({ ok: false, reason })

/** identityFromUri maps a URI SAN to an identity: the prefix is stripped, the rest must be a safe identity. */
export function identityFromUri(uri: string, prefix: string | undefined): string | undefined {
  if (prefix === undefined || !uri.startsWith(prefix)) return undefined
  const id = uri.slice(prefix.length)
  return isSafeIdentity(id) ? id : undefined
}

/** notADeviceCertificate says why a verified certificate is not a device certificate, or undefined. */
function notADeviceCertificate(cert: X509Certificate): string | undefined {
  if (cert.ca) return 'client certificate is a CA certificate (basicConstraints CA:TRUE)'
  // names first: a self-signed certificate names itself as its issuer, and this spares a verify per CONNECT
  if (cert.issuer === cert.subject && cert.verify(cert.publicKey)) return 'client certificate is self-signed'
  const eku = cert.keyUsage
  if (eku !== undefined && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU))
    return 'client certificate extended key usage excludes clientAuth'
  return undefined
}

/** credentialOf describes a verified certificate; operational when one of `operationalCas` signed it. */
function credentialOf(
  cert: X509Certificate,
  operationalCas: readonly X509Certificate[],
): PresentedCredential {
  // names first (cheap), then the signature: a factory CA with the same name as an operational one is not one
  const operational = operationalCas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
  let spki: Buffer | undefined
  return {
    kind: operational ? 'operational' : 'factory',
    serialNumber: cert.serialNumber.toLowerCase(),
    sha256Fingerprint: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    // read only by a renewal that must certify a new key: exporting it on every CONNECT cost ~4% of the CPU
    get spki(): Buffer {
      spki ??= cert.publicKey.export({ format: 'der', type: 'spki' })
      return spki
    },
  }
}

function readIdentity(
  cert: X509Certificate,
  settings: IdentitySource,
  operationalCas: readonly X509Certificate[],
): IdentityResult {
  const problem = notADeviceCertificate(cert)
  if (problem) return refuse(problem)
  const names = certificateNames(cert.raw)
  const { source } = settings
  const candidates =
    source === 'subject-cn' ? names.commonNames : source === 'san-dns' ? names.dnsNames : names.uris
  if (candidates.length !== 1)
    return refuse(`client certificate must carry exactly one ${source}, found ${candidates.length}`)
  const value = candidates[0] ?? ''
  const id = source === 'san-uri' ? identityFromUri(value, settings.uriPrefix) : value
  if (id === undefined) return refuse('the URI SAN is not identity.uriPrefix followed by an identity')
  if (!isSafeIdentity(id)) return refuse('identity has characters that are not allowed in topics')
  return { ok: true, identity: { id, credential: credentialOf(cert, operationalCas) } }
}

/**
 * identityOf reads the device identity from a TLS socket whose client certificate the TLS layer has already
 * verified against the factory CA bundle. It is the only reader of the peer certificate. It reads the names
 * from the certificate's DER (never from a printed form), refuses certificates that are not device
 * certificates (CA, self-signed, no clientAuth), and never throws: anything unreadable is a refusal. A
 * certificate signed by one of `operationalCas` is an operational one (the device renews with it).
 */
export function identityOf(
  socket: TLSSocket,
  settings: IdentitySource,
  operationalCas: readonly X509Certificate[] = [],
): IdentityResult {
  try {
    if (!socket.authorized) return refuse('client certificate not verified')
    const cert = socket.getPeerX509Certificate()
    if (!cert) return refuse('no client certificate')
    return readIdentity(cert, settings, operationalCas)
  } catch (err) {
    return refuse(`client certificate is unreadable: ${(err as Error).message}`)
  }
}
