import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { certificatesFromPem } from '../pki/pem.js'
import { type LoadedCa, loadCa } from '../pki/signer.js'

/** ListenerMaterial is what the MQTT listener serves with: its certificate and key, and the factory CAs. */
export interface ListenerMaterial {
  readonly certPem: string
  readonly keyPem: string
  readonly clientCaPem: string
  /** The CA(s) of operational certificates, trusted too so that devices renew with them ('' or absent: none). */
  readonly operationalCaPem?: string | undefined
}

/** listenerContextOptions are the secure-context options of the listener (TLS 1.2+ only). */
export const listenerContextOptions = (m: ListenerMaterial): SecureContextOptions => ({
  cert: m.certPem,
  key: m.keyPem,
  ca: trustedClientCas(m),
  minVersion: 'TLSv1.2',
})

/** trustedClientCas is the bundle the listener verifies client certificates with: factory CAs, then operational. */
export const trustedClientCas = (m: ListenerMaterial): string =>
  m.operationalCaPem ? `${m.clientCaPem.trimEnd()}\n${m.operationalCaPem}` : m.clientCaPem

/** parseCaBundle parses every certificate of a PEM bundle (operational CAs, to tell renewals apart). */
export function parseCaBundle(pem: string, what: string): X509Certificate[] {
  if (pem === '') return []
  checkBundle(pem, what)
  return certificatesFromPem(pem).map((der) => new X509Certificate(der))
}

/** firstCertificate parses the first certificate of a PEM bundle, or throws saying what is wrong. */
function firstCertificate(pem: string, what: string): X509Certificate {
  const der = certificatesFromPem(pem)[0]
  if (!der) throw new Error(`${what}: no CERTIFICATE block found`)
  try {
    return new X509Certificate(der)
  } catch (err) {
    throw new Error(`${what}: not a certificate (${(err as Error).message})`)
  }
}

/** bundle checks a PEM bundle holds at least one certificate and that all of them parse. */
function checkBundle(pem: string, what: string): void {
  const ders = certificatesFromPem(pem)
  if (ders.length === 0) throw new Error(`${what}: no CERTIFICATE block found`)
  for (const der of ders) new X509Certificate(der)
}

/**
 * checkListenerPair validates the listener's certificate and key: the certificate parses and is valid now, and
 * the key is the certificate's. Returns the certificate's notAfter.
 */
export function checkListenerPair(m: ListenerMaterial, now = new Date()): Date {
  const certificate = firstCertificate(m.certPem, 'tls.certFile')
  const notAfter = new Date(certificate.validTo)
  if (notAfter <= now) throw new Error(`tls.certFile: the certificate expired at ${notAfter.toISOString()}`)
  checkSecureContext(m)
  return notAfter
}

/** checkFactoryCa validates the factory CA bundle the listener verifies devices with. */
export function checkFactoryCa(m: ListenerMaterial): void {
  checkBundle(m.clientCaPem, 'tls.clientCaFile')
  checkSecureContext(m)
}

function checkSecureContext(m: ListenerMaterial): void {
  try {
    createSecureContext(listenerContextOptions(m)) // throws when the key does not match the certificate
  } catch (err) {
    throw new Error(`tls.keyFile: ${(err as Error).message}`)
  }
}

/** checkProductionCa validates the production CA bundle: at least one certificate, all of them readable. */
export function checkProductionCa(pem: string): void {
  checkBundle(pem, 'production.caFile')
}

/** IssuingCaMaterial is the embedded CA, loaded, with the intermediates it appends to each certificate. */
export interface IssuingCaMaterial {
  readonly ca: LoadedCa
  readonly chainPem: string
}

/** loadIssuingCa loads and checks the embedded CA's files; a CA that expired is refused. */
export function loadIssuingCa(
  certPem: string,
  keyPem: string,
  chainPem: string,
  now = new Date(),
): IssuingCaMaterial {
  let ca: LoadedCa
  try {
    ca = loadCa(certPem, keyPem)
  } catch (err) {
    throw new Error(`issuer.localCa: ${(err as Error).message}`)
  }
  const notAfter = new Date(ca.certificate.validTo)
  if (notAfter <= now) throw new Error(`issuer.localCa.certFile: the CA expired at ${notAfter.toISOString()}`)
  if (chainPem !== '') checkBundle(chainPem, 'issuer.localCa.chainFile')
  return { ca, chainPem }
}

/** readText reads a configured file as UTF-8 ('' when the setting is unset). */
export const readText = (path: string | undefined): string =>
  path === undefined ? '' : readFileSync(path, 'utf8')
