import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { LocalCaIssuer } from '../../../src/issuers/local-ca/local-ca-issuer.js'
import { csrDer, type ParsedCsr, parseCsr } from '../../../src/pki/csr.js'
import { PkiError } from '../../../src/pki/errors.js'
import { keyAlgorithmOf } from '../../../src/pki/keys.js'
import { loadCa } from '../../../src/pki/signer.js'
import { opensslCa, opensslReqVerify, opensslVerifyStrict } from '../../support/openssl-batch.js'

/** Outcome is what the bridge's CSR reader made of one input. */
export type Outcome = { readonly reason: string; readonly csr?: ParsedCsr }

/** outcomeOf runs the bridge's reader; anything thrown that is not a PkiError is a crash and is rethrown. */
export function outcomeOf(input: Buffer | string): Outcome {
  try {
    const csr = parseCsr(typeof input === 'string' ? input : input.toString('base64'))
    return { reason: 'accept', csr }
  } catch (err) {
    if (err instanceof PkiError) return { reason: err.reason }
    throw err
  }
}

/** derOf is the DER openssl is given for an input (undefined when it is not base64/PEM of anything). */
export function derOf(input: Buffer | string): Buffer | undefined {
  if (typeof input !== 'string') return input
  try {
    return csrDer(input)
  } catch {
    return undefined
  }
}

/** Differential checks accepted requests the way a strict CA would be checked. */
export interface Differential {
  /** For accepted CSRs: openssl accepts each, and each issued certificate passes -x509_strict with the same key. */
  checkAccepted(accepted: readonly { name: string; der: Buffer; csr: ParsedCsr }[]): Promise<string[]>
}

/** createDifferential makes an openssl CA and an embedded-CA issuer on it. */
export async function createDifferential(): Promise<Differential> {
  const { certFile, keyFile } = await opensslCa()
  const ca = loadCa(await readFile(certFile, 'utf8'), await readFile(keyFile, 'utf8'))
  const template = { dnsNames: ['{deviceId}.devices.example'], uris: [], validityHours: 24 }
  const issuer = new LocalCaIssuer({ ca, chainPem: '', template })
  return {
    async checkAccepted(accepted) {
      const findings: string[] = []
      const verdicts = await opensslReqVerify(accepted.map((a) => a.der))
      accepted.forEach((a, i) => {
        if (!verdicts[i]) findings.push(`${a.name}: the bridge accepts a request openssl req -verify refuses`)
      })
      const issued = await Promise.all(
        accepted.map(async ({ csr }) => {
          const keyAlgorithm = keyAlgorithmOf(csr.publicKey) ?? 'ECDSA-P256'
          const order = { identity: 'device-1', keyAlgorithm, csr }
          return issuer.issue(order, new AbortController().signal)
        }),
      )
      accepted.forEach((a, i) => {
        const cert = new X509Certificate(issued[i]?.certificatePem ?? '')
        const spki = cert.publicKey.export({ format: 'der', type: 'spki' })
        if (!spki.equals(a.csr.spki)) findings.push(`${a.name}: the certificate key re-parses differently`)
        if (!a.csr.publicKey.equals(cert.publicKey))
          findings.push(`${a.name}: the certificate holds another key`)
      })
      findings.push(
        ...(await opensslVerifyStrict(
          certFile,
          issued.map((c) => c.certificatePem),
        )),
      )
      return findings
    },
  }
}
