import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { certificatesFromPem } from '../pki/pem.js'
import { type IssuingCaMaterial, loadCa } from '../pki/signer.js'
import { chainValidity, validityProblem } from '../pki/validity.js'

/** ListenerMaterial is what the MQTT listener serves with: its certificate and key, and the factory CAs. */
export interface ListenerMaterial {
  readonly certPem: string
  readonly keyPem: string
  readonly clientCaPem: string
  /** The CA(s) of operational certificates, trusted too so that devices renew with them ('' or absent: none). */
  readonly operationalCaPem?: string | undefined
}

/**
 * listenerContextOptions are the secure-context options of the listener (TLS 1.2+ only); it verifies client
 * certificates with the factory CAs, then the operational ones.
 */
export const listenerContextOptions = (m: ListenerMaterial): SecureContextOptions => ({
  cert: m.certPem,
  key: m.keyPem,
  ca: m.operationalCaPem ? `${m.clientCaPem.trimEnd()}\n${m.operationalCaPem}` : m.clientCaPem,
  minVersion: 'TLSv1.2',
})

/** parseCaBundle checks a CA bundle that may be empty (operational CAs, to tell renewals apart). */
export const parseCaBundle = (pem: string, what: string, now = new Date()): X509Certificate[] =>
  pem === '' ? [] : checkCaBundle(pem, what, now)

const isoOf = (time: string): string => new Date(time).toISOString()

/** validityProblemOf says why a certificate is not valid at `now` (not yet valid, expired), or undefined. */
function validityProblemOf(certificate: X509Certificate, now: Date): string | undefined {
  if (now < new Date(certificate.validFrom)) return `is not valid before ${isoOf(certificate.validFrom)}`
  if (now >= new Date(certificate.validTo)) return `expired at ${isoOf(certificate.validTo)}`
  return undefined
}

const subjectOf = (certificate: X509Certificate): string => certificate.subject.replace(/\n/g, ', ')

/**
 * checkCaBundle checks a bundle of trusted CAs (factory, operational, production, intermediates): it holds
 * certificates, each of them a CA (an end-entity certificate there is the wrong file), and at least one is valid
 * now (a bundle of CAs that are all expired or not yet valid verifies nothing). A CA of the bundle that is out of
 * date beside a valid one is kept: rotations stage the next CA early and leave the last one a while.
 */
export function checkCaBundle(pem: string, what: string, now = new Date()): X509Certificate[] {
  const ders = certificatesFromPem(pem)
  if (ders.length === 0) throw new Error(`${what}: no CERTIFICATE block found`)
  const certificates = ders.map((der) => new X509Certificate(der))
  const endEntity = certificates.find((c) => !c.ca)
  if (endEntity)
    throw new Error(
      `${what}: ${subjectOf(endEntity)} is an end-entity certificate, not a CA (basicConstraints cA)`,
    )
  if (certificates.every((c) => validityProblemOf(c, now) !== undefined)) {
    const problems = certificates.map((c) => `${subjectOf(c)} ${validityProblemOf(c, now)}`)
    throw new Error(`${what}: no CA is valid now (${problems.join('; ')})`)
  }
  return certificates
}

/** checkListenerPair checks the listener's pair (an end-entity certificate valid now, and its key) and returns it. */
export function checkListenerPair(m: ListenerMaterial, now = new Date()): X509Certificate {
  const der = certificatesFromPem(m.certPem)[0]
  if (!der) throw new Error('tls.certFile: no CERTIFICATE block found')
  const certificate = explained(
    () => new X509Certificate(der),
    (e) => `tls.certFile: not a certificate (${e})`,
  )
  if (certificate.ca)
    throw new Error(`tls.certFile: ${subjectOf(certificate)} is a CA certificate, not the listener's own`)
  const problem = validityProblemOf(certificate, now)
  if (problem) throw new Error(`tls.certFile: the certificate ${problem}`)
  checkSecureContext(m)
  return certificate
}

/** explained runs `run`, rethrowing what it throws with the message `explain` makes of its message. */
function explained<T>(run: () => T, explain: (message: string) => string): T {
  try {
    return run()
  } catch (err) {
    throw new Error(explain((err as Error).message))
  }
}

/** checkFactoryCa validates the factory CA bundle the listener verifies devices with (see checkCaBundle). */
export function checkFactoryCa(m: ListenerMaterial, now = new Date()): X509Certificate[] {
  const cas = checkCaBundle(m.clientCaPem, 'tls.clientCaFile', now)
  checkSecureContext(m)
  return cas
}

/** checkSecureContext throws when the key does not match the certificate. */
const checkSecureContext = (m: ListenerMaterial) =>
  explained(
    () => createSecureContext(listenerContextOptions(m)),
    (e) => `tls.keyFile: ${e}`,
  )

/** loadIssuingCa loads the embedded CA: a CA certificate valid now with its own key, and intermediates that are CAs. */
export function loadIssuingCa(
  certPem: string,
  keyPem: string,
  chainPem: string,
  now = new Date(),
): IssuingCaMaterial {
  const ca = explained(
    () => loadCa(certPem, keyPem),
    (e) => `issuer.localCa: ${e}`,
  )
  if (chainPem !== '') checkCaBundle(chainPem, 'issuer.localCa.chainFile', now)
  // the CA and its intermediates, as the issuer sees them (LocalCaIssuer refuses the same at start-up)
  const problem = validityProblem(chainValidity(ca.certificate, chainPem), now.getTime())
  if (problem) throw new Error(`issuer.localCa: ${problem}`)
  return { ca, chainPem }
}

/** readText reads a configured file as UTF-8 ('' when the setting is unset). */
export const readText = (path: string | undefined): string =>
  path === undefined ? '' : readFileSync(path, 'utf8')
