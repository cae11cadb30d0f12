import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { expiryConditions } from '../../../src/observability/readiness.js'
import { makeCa, makeServerCertificate } from '../../support/rotation.js'

const HOUR = 3600_000
const failing = (conditions: ReturnType<typeof expiryConditions>): string[] =>
  conditions.filter((c) => !c.ok()).map((c) => c.reason)

describe('readiness follows the validity of the TLS material in force', () => {
  it('a listener certificate not yet valid or expired, or no factory CA valid now, is not ready', async () => {
    const ca = await makeCa('CA')
    const cert = async (notBefore: number, notAfter: number) =>
      new X509Certificate(
        (
          await makeServerCertificate(ca.signer, 'localhost', 'serverAuth', {
            notBefore: new Date(Date.now() + notBefore),
            notAfter: new Date(Date.now() + notAfter),
          })
        ).certPem,
      )
    const valid = await cert(-HOUR, HOUR)
    const future = await cert(HOUR, 2 * HOUR)
    const past = await cert(-2 * HOUR, -HOUR)
    const factory = new X509Certificate(ca.certPem)
    const expiredCa = new X509Certificate(
      (
        await makeCa('old', {
          notBefore: new Date(Date.now() - 2 * HOUR),
          notAfter: new Date(Date.now() - HOUR),
        })
      ).certPem,
    )
    const conditions = (listener: X509Certificate, factoryCas: X509Certificate[]) =>
      expiryConditions({
        listenerCertificate: () => listener,
        factoryCas: () => factoryCas,
        issuingCa: () => undefined,
      })
    expect(failing(conditions(valid, [factory]))).toEqual([])
    expect(failing(conditions(future, [factory]))).toEqual([
      'the listener certificate has expired or is not yet valid',
    ])
    expect(failing(conditions(past, [factory]))).toEqual([
      'the listener certificate has expired or is not yet valid',
    ])
    expect(failing(conditions(valid, [expiredCa]))).toEqual([
      'no factory CA of tls.clientCaFile is valid now',
    ])
    expect(failing(conditions(valid, [expiredCa, factory]))).toEqual([])
  })
})
