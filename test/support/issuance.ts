import type { NewIssuance } from '../../src/registry/registry.js'

/** issuance makes a registry record for tests: a day-long certificate issued at `at`. */
export const issuance = (
  identity: string,
  serialNumber: string,
  at: number,
  registeredBy?: string,
): NewIssuance => ({
  identity,
  serialNumber,
  notBefore: new Date(at),
  notAfter: new Date(at + 86_400_000),
  keySource: registeredBy ? 'bridge' : 'device',
  issuer: 'local-ca',
  sha256Fingerprint: serialNumber.repeat(2),
  issuedAt: new Date(at),
  registeredBy,
  requestId: `r-${serialNumber}`,
})
