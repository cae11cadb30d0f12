import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deniedReason, loadDenyList } from '../../../src/registration/deny-list.js'

async function file(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'mrb-deny-')), 'deny.yaml')
  await writeFile(path, text)
  return path
}

const cert = { identity: 'device-1', serialNumber: '0a1b2c', sha256Fingerprint: 'ab'.repeat(32) }

describe('deny list', () => {
  it('matches identities, serials and fingerprints however openssl or Node write them', async () => {
    expect(deniedReason(loadDenyList(await file('identities: [device-1]\n')), cert)).toContain('identity')
    expect(deniedReason(loadDenyList(await file('serials: ["0A:1B:2C"]\n')), cert)).toContain('serial')
    expect(deniedReason(loadDenyList(await file('serials: ["A1B2C"]\n')), cert)).toContain('serial')
    const colons = Array(32).fill('AB').join(':')
    expect(deniedReason(loadDenyList(await file(`fingerprints: ["${colons}"]\n`)), cert)).toContain(
      'fingerprint',
    )
    expect(
      deniedReason(loadDenyList(await file('identities: [device-2]\nserials: ["ff"]\n')), cert),
    ).toBeUndefined()
  })

  it('refuses a file that is not a deny list, naming the field', async () => {
    expect(() => loadDenyList('/nonexistent/deny.yaml')).toThrow('cannot read')
    await expect(file('serials: [zz]\n').then(loadDenyList)).rejects.toThrow('serials.0')
    await expect(file('people: [a]\n').then(loadDenyList)).rejects.toThrow('(top level)')
  })

  it('refuses what a write cut short leaves; an empty list is written explicitly', async () => {
    for (const text of ['', '  \n', '# nothing here\n', 'identities:\n  - device-1\n  - devi'])
      await expect(
        file(text).then((f) => loadDenyList(f)),
        JSON.stringify(text),
      ).rejects.toThrow()
    expect(deniedReason(loadDenyList(await file('identities: []\n')), cert)).toBeUndefined()
  })
})
