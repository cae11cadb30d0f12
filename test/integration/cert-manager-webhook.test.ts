import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { csrUsages } from '../../src/issuers/cert-manager/csr-usages.js'
import { usagesFor } from '../../src/issuers/cert-manager/resources.js'
import { RegistrationError } from '../../src/protocol/errors.js'
import { startKubeApiServer } from '../support/kube/api-server.js'
import {
  certManagerWebhook,
  validateCertificate,
  validateCertificateRequest,
} from '../support/kube/webhook.js'

// The emulated webhook's rules, each against the text of cert-manager's validation package (upstream
// internal/apis/certmanager/validation), and the bridge's CSR usages differentially against them.
const dir = mkdtempSync(join(tmpdir(), 'mrb-webhook-'))
const key = join(dir, 'key.pem')
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key])
const csrWith = (...addext: string[]): string =>
  execFileSync('openssl', [
    'req',
    '-new',
    '-key',
    key,
    '-subj',
    '/CN=dev',
    ...addext.flatMap((e) => ['-addext', e]),
  ]).toString()
const b64 = (t: string) => Buffer.from(t).toString('base64')
const issuerRef = { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' }

describe('Certificate rules', () => {
  it('commonName longer than 64 bytes: field.TooLong', () => {
    const spec = {
      secretName: 'abc',
      issuerRef,
      commonName: 'this-is-a-big-long-string-which-has-exactly-sixty-five-characters',
    }
    expect(validateCertificate(spec)).toEqual(['spec.commonName: Too long: may not be more than 64 bytes'])
    expect(validateCertificate({ ...spec, commonName: 'x'.repeat(64) })).toEqual([])
  })

  it('no name at all', () => {
    expect(validateCertificate({ secretName: 'abc', issuerRef })).toEqual([
      'spec: Invalid value: "": at least one of commonName (from the commonName field or from a literalSubject), dnsNames, uriSANs, ipAddresses, emailSANs or otherNames must be set',
    ])
  })
})

describe('CertificateRequest rules', () => {
  const mismatch = 'csr key usages do not match specified usages, these should match if both are set'

  it('a CSR that does not decode', () => {
    expect(validateCertificateRequest({ issuerRef, request: b64('nope') })[0]).toContain(
      'failed to decode csr',
    )
  })

  it('CSR usages must match spec.usages when both are set (digital signature and signing are one)', () => {
    const request = b64(csrWith('keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'))
    expect(validateCertificateRequest({ issuerRef, request, usages: ['signing', 'client auth'] })).toEqual([])
    expect(
      validateCertificateRequest({ issuerRef, request, usages: ['digital signature', 'server auth'] })[0],
    ).toContain(mismatch)
  })

  it('spec.usages equal to the default, or a CSR without usage extensions, are not compared', () => {
    const request = b64(csrWith('keyUsage=critical,digitalSignature'))
    expect(
      validateCertificateRequest({ issuerRef, request, usages: ['digital signature', 'key encipherment'] }),
    ).toEqual([])
    const plain = b64(csrWith('subjectAltName=DNS:dev.example'))
    expect(validateCertificateRequest({ issuerRef, request: plain, usages: ['client auth'] })).toEqual([])
  })

  it('isCA adds cert sign to the usages compared', () => {
    const request = b64(csrWith('keyUsage=critical,digitalSignature,keyCertSign'))
    expect(
      validateCertificateRequest({ issuerRef, request, usages: ['digital signature'], isCA: true }),
    ).toEqual([])
  })
})

describe("the bridge's spec.usages for a device CSR, differentially against the webhook", () => {
  const cases: [string, string[]][] = [
    ['no usage extensions', []],
    ['digitalSignature only', ['keyUsage=critical,digitalSignature']],
    ['digitalSignature + clientAuth', ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']],
    ['clientAuth only', ['extendedKeyUsage=clientAuth']],
    [
      'keyEncipherment + clientAuth',
      ['keyUsage=keyEncipherment,digitalSignature', 'extendedKeyUsage=clientAuth'],
    ],
  ]
  for (const [name, ext] of cases)
    it(`${name}: accepted by the webhook`, () => {
      const pem = csrWith(...ext)
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
      const usages = csrUsages(der) ?? usagesFor('ECDSA-P256')
      expect(validateCertificateRequest({ issuerRef, request: b64(pem), usages })).toEqual([])
    })

  it('serverAuth or certSign: refused by the bridge with EXTENSION_NOT_ALLOWED before anything is created', () => {
    for (const ext of ['extendedKeyUsage=serverAuth', 'keyUsage=digitalSignature,keyCertSign']) {
      const der = Buffer.from(csrWith(ext).replace(/-----[^-]+-----|\s/g, ''), 'base64')
      expect(() => csrUsages(der)).toThrow(RegistrationError)
      try {
        csrUsages(der)
      } catch (err) {
        expect((err as RegistrationError).code).toBe('EXTENSION_NOT_ALLOWED')
      }
    }
  })
})

describe('the webhook behind the emulated API server', () => {
  it('a create it refuses: 406 with the denial as kube-apiserver relays it; nothing stored', async () => {
    const api = await startKubeApiServer()
    try {
      api.createNamespace('devices')
      api.admission.push(certManagerWebhook)
      const res = await api.request('POST', '/apis/cert-manager.io/v1/namespaces/devices/certificates', {
        body: {
          apiVersion: 'cert-manager.io/v1',
          kind: 'Certificate',
          metadata: { name: 'long' },
          spec: { secretName: 'long-tls', issuerRef, commonName: 'x'.repeat(65) },
        },
      })
      let text = ''
      for await (const chunk of res) text += chunk
      expect(res.statusCode).toBe(406)
      expect(JSON.parse(text)).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        reason: 'NotAcceptable',
        message:
          'admission webhook "webhook.cert-manager.io" denied the request: spec.commonName: Too long: may not be more than 64 bytes',
      })
      expect(api.requests.at(-1)).toMatchObject({ verb: 'create', resource: 'certificates', status: 406 })
      const get = await api.request('GET', '/apis/cert-manager.io/v1/namespaces/devices/certificates/long')
      get.resume()
      expect(get.statusCode).toBe(404)
    } finally {
      await api.close()
    }
  })
})
