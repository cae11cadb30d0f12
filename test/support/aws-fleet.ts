import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { IssuanceRecord } from '../../src/registry/registry.js'
import { SqliteRegistry } from '../../src/registry/sqlite-registry.js'
import type { TestBridge } from './bridge.js'

/** FLEET_TEMPLATES is the provisioning templates file of the AWS tests (docs/aws-fleet-provisioning.md's example). */
export const FLEET_TEMPLATES = `templates:
  - name: FleetTemplate
    identities: ['device-*']
    parameters:
      SerialNumber: { required: true, pattern: 'SN-[0-9]+' }
      Site: { default: factory-1 }
    thingName: '{identity}'
    deviceConfiguration:
      site: '{Site}'
      serial: '{SerialNumber}'
  - name: GatewayTemplate
    identities: ['gateway-*']
`

/** writeTemplates writes a templates file in a new directory and returns its path. */
export async function writeTemplates(text = FLEET_TEMPLATES): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mrb-aws-')), 'templates.yaml')
  await writeFile(file, text)
  return file
}

/** certificatesOf reads an identity's certificates, newest first, from the bridge's registry file (read-only). */
export async function certificatesOf(
  bridge: TestBridge,
  identity: string,
): Promise<readonly IssuanceRecord[]> {
  const registry = new SqliteRegistry(bridge.bridge.config.registry.file, { readonly: true })
  try {
    return (await registry.device(identity))?.certificates ?? []
  } finally {
    await registry.close()
  }
}

/**
 * ageTokens moves every ownership token's expiry of an identity into the past, in the bridge's registry file: the
 * token lifetime elapsed, without waiting for it.
 */
export function ageTokens(bridge: TestBridge, identity: string): void {
  const db = new Database(bridge.bridge.config.registry.file)
  try {
    db.prepare('UPDATE certificates SET token_expires_at = ? WHERE identity = ?').run(
      Date.now() - 1,
      identity,
    )
  } finally {
    db.close()
  }
}
