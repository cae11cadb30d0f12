import 'reflect-metadata'
import {
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
} from '@peculiar/x509'
import { RegistrationError } from '../../protocol/errors.js'

/** ALLOWED_USAGES are the cert-manager usages a device certificate may carry. */
export const ALLOWED_USAGES = ['digital signature', 'key encipherment', 'client auth'] as const

const KEY_USAGES: [KeyUsageFlags, string][] = [
  [KeyUsageFlags.digitalSignature, 'digital signature'],
  [KeyUsageFlags.nonRepudiation, 'content commitment'],
  [KeyUsageFlags.keyEncipherment, 'key encipherment'],
  [KeyUsageFlags.dataEncipherment, 'data encipherment'],
  [KeyUsageFlags.keyAgreement, 'key agreement'],
  [KeyUsageFlags.keyCertSign, 'cert sign'],
  [KeyUsageFlags.cRLSign, 'crl sign'],
  [KeyUsageFlags.encipherOnly, 'encipher only'],
  [KeyUsageFlags.decipherOnly, 'decipher only'],
]
const EXTENDED: Record<string, string> = {
  [ExtendedKeyUsage.serverAuth]: 'server auth',
  [ExtendedKeyUsage.clientAuth]: 'client auth',
  [ExtendedKeyUsage.codeSigning]: 'code signing',
  [ExtendedKeyUsage.emailProtection]: 'email protection',
  [ExtendedKeyUsage.timeStamping]: 'timing',
  [ExtendedKeyUsage.ocspSigning]: 'ocsp signing',
}

/**
 * csrUsages are the usages a CSR declares (keyUsage and extendedKeyUsage), in cert-manager's names, or
 * undefined when it declares none. cert-manager's webhook refuses a CertificateRequest whose spec.usages
 * differ from these, so the bridge takes them into spec.usages; a usage beyond ALLOWED_USAGES is refused
 * with EXTENSION_NOT_ALLOWED before anything is created.
 */
export function csrUsages(der: Buffer): string[] | undefined {
  const csr = new Pkcs10CertificateRequest(der)
  const ku = csr.extensions.find((e): e is KeyUsagesExtension => e instanceof KeyUsagesExtension)
  const eku = csr.extensions.find(
    (e): e is ExtendedKeyUsageExtension => e instanceof ExtendedKeyUsageExtension,
  )
  if (!ku && !eku) return undefined
  const usages = [
    ...KEY_USAGES.filter(([flag]) => ku && (ku.usages & flag) !== 0).map(([, name]) => name),
    ...(eku?.usages ?? []).map((oid: unknown) => EXTENDED[String(oid)] ?? `oid ${String(oid)}`),
  ]
  const refused = usages.filter((u) => !(ALLOWED_USAGES as readonly string[]).includes(u))
  if (refused.length)
    throw new RegistrationError(
      'EXTENSION_NOT_ALLOWED',
      `the CSR asks for usages a device may not have: ${refused.join(', ')}`,
    )
  return usages
}
