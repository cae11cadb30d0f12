import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { csrDer, parseCsr } from '../../../src/pki/csr.js'
import { PkiError } from '../../../src/pki/errors.js'
import { opensslCsr, P256 } from '../../support/csr.js'

let _dir: string
beforeAll(async () => {
  _dir = await mkdtemp(join(tmpdir(), 'mrb-csr-'))
})

const csrPem = async (subject: string, extra: string[] = []): Promise<string> =>
  (await opensslCsr(subject, P256, extra)).csr

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return err instanceof PkiError ? err.reason : 'other'
  }
  return undefined
}

describe('parseCsr reads what openssl writes', () => {
  it('takes the CN among other attributes, in UTF-8', async () => {
    expect(parseCsr(await csrPem('/O=Factory/OU=Line 3/CN=capteur-é')).commonNames).toEqual(['capteur-é'])
  })

  it('reads requested SANs and CA powers; CA:FALSE and plain key usages are no CA powers', async () => {
    const csr = parseCsr(
      await csrPem('/CN=d', [
        '-addext',
        'basicConstraints=critical,CA:FALSE',
        '-addext',
        'keyUsage=digitalSignature',
        '-addext',
        'subjectAltName=DNS:d.example,URI:urn:d,IP:10.0.0.1,email:a@b',
      ]),
    )
    expect(csr.requestsCaPowers).toBe(false)
    expect(csr.subjectAltNames).toEqual({ dnsNames: ['d.example'], uris: ['urn:d'], others: 2 })
    expect(parseCsr(await csrPem('/CN=d', ['-addext', 'keyUsage=cRLSign'])).requestsCaPowers).toBe(true)
    expect(
      parseCsr(await csrPem('/CN=d', ['-addext', 'nameConstraints=permitted;DNS:example.com']))
        .requestsCaPowers,
    ).toBe(true)
  })

  it('has no CN when the subject has none', async () => {
    expect(parseCsr(await csrPem('/O=Factory')).commonNames).toEqual([])
  })
})

describe('malformed DER is CSR_UNREADABLE, never an exception of another kind', () => {
  it('truncated, trailing bytes, wrong version, random bytes, empty', async () => {
    const der = csrDer(await csrPem('/CN=d'))
    expect(codeOf(() => parseCsr(der.subarray(0, der.length - 10).toString('base64')))).toBe('MALFORMED')
    expect(codeOf(() => parseCsr(Buffer.concat([der, Buffer.from([0])]).toString('base64')))).toBe(
      'MALFORMED',
    )
    const v1 = Buffer.from(der)
    v1[v1.indexOf(Buffer.from([0x02, 0x01, 0x00]))] = 0x02
    v1[v1.indexOf(Buffer.from([0x02, 0x01, 0x00])) + 2] = 0x01
    expect(codeOf(() => parseCsr(v1.toString('base64')))).toBe('MALFORMED')
    expect(codeOf(() => parseCsr(''))).toBe('MALFORMED')
  })
})
