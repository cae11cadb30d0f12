import { join, resolve } from 'node:path'
import { createDevPki, DEV_DEVICE_IDS } from '../pki/dev-pki.js'
import type { Flags } from './usage-error.js'

export const INIT_HELP = `Usage: registration-bridge init [--state-dir DIR] [--force]

Writes a development PKI to DIR/pki (default ./.registration-bridge/pki): a factory CA with factory
certificates for ${DEV_DEVICE_IDS.join(', ')}, the issuing CA, and a server certificate for localhost.
Refuses to overwrite an existing PKI unless --force is given.`

export const INIT_OPTIONS = { 'state-dir': { type: 'string' }, force: { type: 'boolean' } } as const

export async function init(flags: Flags<typeof INIT_OPTIONS>): Promise<void> {
  const dir = join(resolve(flags['state-dir'] ?? '.registration-bridge'), 'pki')
  await createDevPki(dir, { force: flags.force === true })
  process.stdout.write(`Wrote a development PKI to ${dir}\n`)
}
