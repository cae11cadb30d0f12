import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTls } from '../../src/client/register.js'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import { ageTokens, certificatesOf, writeTemplates } from '../support/aws-fleet.js'
import { connectAwsDevice, modeledErrorOf } from '../support/aws-sdk.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { opensslCsr } from '../support/csr.js'
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js'
import { openssl } from '../support/tools.js'

// The pending state on the production side, with the embedded CA and the product's defaults: a certificate of a
// create call is on the CRL (certificateHold) until RegisterThing, so the production mosquitto (crlfile) refuses it;
// once activated it is accepted; a token that expires revokes it for good. Lifecycle rules around it.

let bridge: TestBridge
const brokers: Mosquitto[] = []
beforeAll(async () => {
  bridge = await startTestBridge(['aws.enabled=true', `aws.templatesFile=${await writeTemplates()}`])
})
afterAll(async () => {
  for (const m of brokers) await m.stop()
  await bridge.stop()
})

/** production starts the production mosquitto with the bridge's CRL, as it is now (mosquitto reads it at start). */
async function production(): Promise<Mosquitto> {
  const m = await startMosquitto({
    cafile: bridge.pki.file(DEV_PKI_FILES.issuingCaCert),
    certfile: bridge.pki.file(DEV_PKI_FILES.serverCert),
    keyfile: bridge.pki.file(DEV_PKI_FILES.serverKey),
    extra: [`crlfile ${bridge.bridge.config.lifecycle.crl.file}`],
  })
  brokers.push(m)
  return m
}

/** connects says whether a broker accepts these credentials, or why not. */
async function connects(url: string, certPem: string, keyPem: string): Promise<string> {
  const caPem = await readFile(bridge.pki.file(DEV_PKI_FILES.issuingCaCert), 'utf8')
  try {
    const client = await connectTls(url, { certPem, keyPem, caPem }, 5_000)
    await client.endAsync(true)
    return 'accepted'
  } catch (err) {
    return String((err as { code?: number }).code ?? (err as Error).message)
  }
}

/** crlText is the CRL file as openssl prints it. */
const crlText = () => openssl(['crl', '-in', bridge.bridge.config.lifecycle.crl.file, '-noout', '-text'])

/** serialHex is how openssl prints a serial on a CRL (upper-case hex). */
const serialHex = (serial: string) => serial.toUpperCase().padStart(2, '0')

describe('a pending certificate is no credential until RegisterThing', () => {
  it('held on the CRL: production mosquitto and the bridge refuse it; after RegisterThing both accept it', async () => {
    const device = await connectAwsDevice(bridge, 'device-001')
    let created: { certificatePem?: string; privateKey?: string; certificateOwnershipToken?: string }
    try {
      created = await device.identity.createKeysAndCertificate({})
      const [record] = await certificatesOf(bridge, 'device-001')
      const text = await crlText()
      expect(text).toContain(serialHex(record?.serialNumber as string))
      expect(text).toContain('Certificate Hold')
      const held = await production()
      expect(
        await connects(held.url, created.certificatePem as string, created.privateKey as string),
      ).not.toBe('accepted')
      // the bridge trusts its own CA for renewals: a pending certificate is refused there too (CONNACK 5)
      expect(await connects(bridge.url, created.certificatePem as string, created.privateKey as string)).toBe(
        '5',
      )
      await device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: created.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-1' },
      })
      expect(await crlText()).not.toContain(serialHex(record?.serialNumber as string))
    } finally {
      await device.close()
    }
    const activated = await production() // mosquitto reads its crlfile at start
    expect(
      await connects(activated.url, created.certificatePem as string, created.privateKey as string),
    ).toBe('accepted')
    expect(await connects(bridge.url, created.certificatePem as string, created.privateKey as string)).toBe(
      'accepted',
    )
  })

  it('a token that expires revokes its certificate for good (cessationOfOperation), on the CRL', async () => {
    const device = await connectAwsDevice(bridge, 'device-002')
    try {
      const created = await device.identity.createKeysAndCertificate({})
      ageTokens(bridge, 'device-002')
      // the CRL's next write sweeps expired tokens: any create call writes it (so does the periodic refresh)
      const other = await connectAwsDevice(bridge, 'device-003')
      await other.identity.createKeysAndCertificate({}).finally(() => other.close())
      const [record] = await certificatesOf(bridge, 'device-002')
      expect(record).toMatchObject({ state: 'revoked', revocationReason: 'cessationOfOperation' })
      const text = await crlText()
      const entry = text.slice(text.indexOf(serialHex(record?.serialNumber as string)))
      expect(entry.slice(0, 300)).toContain('Cessation Of Operation')
      const refused = await modeledErrorOf(
        device.identity.registerThing({
          templateName: 'FleetTemplate',
          certificateOwnershipToken: created.certificateOwnershipToken as string,
          parameters: { SerialNumber: 'SN-2' },
        }),
      )
      expect(refused).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      const m = await production()
      expect(await connects(m.url, created.certificatePem as string, created.privateKey as string)).not.toBe(
        'accepted',
      )
    } finally {
      await device.close()
    }
  })

  it('re-registration (lifecycle.reRegistration: refuse): a pending certificate does not block a new create call; an active one does', async () => {
    const device = await connectAwsDevice(bridge, 'device-004')
    try {
      const lost = await device.identity.createKeysAndCertificate({})
      const { csr } = await opensslCsr('/CN=device-004')
      const second = await device.identity.createCertificateFromCsr({ certificateSigningRequest: csr })
      expect(second.certificateId).not.toBe(lost.certificateId)
      const states = (await certificatesOf(bridge, 'device-004')).map((c) => [c.state, c.revocationReason])
      expect(states).toEqual([
        ['pending', undefined],
        ['revoked', 'superseded'],
      ])
      // the superseded pending certificate's token died with it
      const stale = await modeledErrorOf(
        device.identity.registerThing({
          templateName: 'FleetTemplate',
          certificateOwnershipToken: lost.certificateOwnershipToken as string,
          parameters: { SerialNumber: 'SN-4' },
        }),
      )
      expect(stale).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' })
      await device.identity.registerThing({
        templateName: 'FleetTemplate',
        certificateOwnershipToken: second.certificateOwnershipToken as string,
        parameters: { SerialNumber: 'SN-4' },
      })
      const again = await modeledErrorOf(device.identity.createKeysAndCertificate({}))
      expect(again).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' })
    } finally {
      await device.close()
    }
  })
})
