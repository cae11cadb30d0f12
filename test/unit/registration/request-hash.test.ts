import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { idempotencyKey } from '../../../src/registration/idempotency.js'
import { recordedIssuance } from '../../../src/registration/lifecycle-policy.js'
import { SqliteRegistry } from '../../../src/registry/sqlite-registry.js'
import { issuance } from '../../support/issuance.js'

const DEFAULT = 'ECDSA-P256' as const
const DER = 'MIIBDzCBtgIBADAfMR0wGwYDVQQDDBRnYXRld2F5LTAwMS1zZW5zb3ItMg'
const PEM = `-----BEGIN CERTIFICATE REQUEST-----\n${DER.slice(0, 32)}\n${DER.slice(32)}\n-----END CERTIFICATE REQUEST-----\n`

describe('the request hash', () => {
  it('is one for one request after defaults: the default keyAlgorithm spelled out, a CSR as PEM or base64 DER', () => {
    expect(idempotencyKey('d', { requestId: 'r' }, DEFAULT)).toBe(
      idempotencyKey('d', { requestId: 'r', keyAlgorithm: DEFAULT }, DEFAULT),
    )
    expect(idempotencyKey('d', { requestId: 'r', csr: PEM }, DEFAULT)).toBe(
      idempotencyKey('d', { requestId: 'r', csr: DER }, DEFAULT),
    )
  })

  it('differs for anything else: identity, requestId, content, gateway, renewal', () => {
    const base = idempotencyKey('d', { requestId: 'r' }, DEFAULT)
    const others = [
      idempotencyKey('e', { requestId: 'r' }, DEFAULT),
      idempotencyKey('d', { requestId: 's' }, DEFAULT),
      idempotencyKey('d', {}, DEFAULT),
      idempotencyKey('d', { requestId: 'r', keyAlgorithm: 'Ed25519' }, DEFAULT),
      idempotencyKey('d', { requestId: 'r', csr: DER }, DEFAULT),
      idempotencyKey('d', { requestId: 'r' }, DEFAULT, { registeredBy: 'g' }),
      idempotencyKey('d', { requestId: 'r' }, DEFAULT, { renewing: 'aa' }),
      idempotencyKey('d', { requestId: 'r' }, DEFAULT, { renewing: 'g' }),
    ]
    expect(new Set([base, ...others]).size).toBe(others.length + 1)
    // the default is part of the content: under another default, `{"requestId":"r"}` asks for another key
    expect(idempotencyKey('d', { requestId: 'r' }, 'Ed25519')).not.toBe(base)
  })
})

describe("recordedIssuance: the registry's record of the same request, whose answer a crash may have lost", () => {
  const hash = 'a'.repeat(64)
  const at = 1_000_000

  async function registryWith(
    ...records: Parameters<SqliteRegistry['record']>[0][]
  ): Promise<SqliteRegistry> {
    const file = join(await mkdtemp(join(tmpdir(), 'mrb-lost-')), 'registry.sqlite')
    const registry = new SqliteRegistry(file)
    for (const r of records) await registry.record(r)
    return registry
  }

  it('is the newest certificate with the same request hash, within the retry window', async () => {
    const registry = await registryWith({ ...issuance('d', 'aa', at), requestHash: hash })
    expect(
      recordedIssuance(await registry.device('d'), hash, 60_000, new Date(at + 59_999))?.serialNumber,
    ).toBe('aa')
    await registry.close()
  })

  it('is nothing for a request that only shares the requestId, after the window, or when a newer one exists', async () => {
    const registry = await registryWith(
      { ...issuance('d', 'aa', at), requestHash: hash },
      { ...issuance('d', 'bb', at + 10), requestHash: 'b'.repeat(64) },
      { ...issuance('e', 'cc', at), requestHash: hash },
    )
    // same requestId (issuance() gives r-<serial>) is no proof: only the hash is
    expect(
      recordedIssuance(await registry.device('d'), 'c'.repeat(64), 60_000, new Date(at + 20))?.serialNumber,
    ).toBeUndefined()
    // the hash of an older certificate: a newer one replaced it
    expect(
      recordedIssuance(await registry.device('d'), hash, 60_000, new Date(at + 20))?.serialNumber,
    ).toBeUndefined()
    // after the window: judged afresh
    expect(
      recordedIssuance(await registry.device('e'), hash, 60_000, new Date(at + 60_000))?.serialNumber,
    ).toBeUndefined()
    // no record of a hash (a registry from before schema 3): never a retry
    const old = await registryWith(issuance('f', 'dd', at))
    expect(
      recordedIssuance(await old.device('f'), hash, 60_000, new Date(at + 1))?.serialNumber,
    ).toBeUndefined()
    await old.close()
    await registry.close()
  })
})
