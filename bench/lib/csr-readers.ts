import { createPublicKey, verify } from 'node:crypto'
import { CertificationRequest } from '@peculiar/asn1-csr'
import { AsnConvert } from '@peculiar/asn1-schema'
import { parseCsr } from '../../src/pki/csr.js'

/** CsrReaderRow is the CPU time of one way of reading and verifying a CSR. */
export interface CsrReaderRow {
  readonly reader: string
  readonly microseconds: number
}

/** perCall measures the mean time of a synchronous call over `ms`, in microseconds. */
function perCall(ms: number, call: (i: number) => unknown): number {
  for (let i = 0; i < 200; i++) call(i) // warm up
  const started = performance.now()
  let n = 0
  while (performance.now() - started < ms) call(n++)
  return Math.round(((performance.now() - started) * 1000) / n)
}

/**
 * csrReaders compares reading a P-256 CSR with the bridge's strict DER reader (structure, key checks,
 * canonical re-encoding, signature) against @peculiar/asn1-csr's schema parser plus the same signature check
 * (and none of the strictness checks), and against the signature check alone.
 */
export function csrReaders(ms: number, items: { pem: string }[]): CsrReaderRow[] {
  const ders = items.map((i) => Buffer.from(i.pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
  const at = (i: number): Buffer => ders[i % ders.length] as Buffer
  const schema = (der: Buffer) => {
    const csr = AsnConvert.parse(der, CertificationRequest)
    const info = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo))
    const spki = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo))
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' })
    return verify('sha256', info, key, Buffer.from(csr.signature))
  }
  const verifyOnly = ders.map((der) => {
    const csr = AsnConvert.parse(der, CertificationRequest)
    return {
      info: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo)),
      key: createPublicKey({
        key: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)),
        format: 'der',
        type: 'spki',
      }),
      signature: Buffer.from(csr.signature),
    }
  })
  return [
    {
      reader: 'bridge strict DER reader (parseCsr)',
      microseconds: perCall(ms, (i) => parseCsr(at(i).toString('base64'))),
    },
    {
      reader: '@peculiar/asn1-csr schema parse + the same verify',
      microseconds: perCall(ms, (i) => schema(at(i))),
    },
    {
      reader: 'node:crypto verify alone (the floor)',
      microseconds: perCall(ms, (i) => {
        const v = verifyOnly[i % verifyOnly.length] as (typeof verifyOnly)[number]
        return verify('sha256', v.info, v.key, v.signature)
      }),
    },
  ]
}
