import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fill, loadTemplates, mayUse } from '../../../src/registration/aws/templates.js'
import { FLEET_TEMPLATES } from '../../support/aws-fleet.js'
import { startTestBridge } from '../../support/bridge.js'

async function file(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'mrb-templates-')), 'templates.yaml')
  await writeFile(path, text)
  return path
}

describe('provisioning templates file', () => {
  it('loads the documented example', async () => {
    const templates = loadTemplates(await file(FLEET_TEMPLATES))
    const fleet = templates.get('FleetTemplate')
    expect(fleet && mayUse(fleet, 'device-9')).toBe(true)
    expect(fleet && mayUse(fleet, 'gateway-9')).toBe(false)
    expect(fleet && fill(fleet, 'device-9', { SerialNumber: 'SN-9', Extra: 'ignored' })).toEqual({
      thingName: 'device-9',
      deviceConfiguration: { site: 'factory-1', serial: 'SN-9' },
      parameters: { SerialNumber: 'SN-9', Site: 'factory-1' },
    })
  })

  it('refuses, with every problem named, what is not a valid file', async () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['templates: []', /newline/],
      ['templates:\n  - name: "with space"\n    identities: [a]\n', /name/],
      ['templates:\n  - name: T\n    identities: []\n', /identities/],
      ['templates:\n  - name: T\n    identities: [a]\n    thingName: "{Nope}"\n', /\{Nope\} is neither/],
      [
        'templates:\n  - name: T\n    identities: [a]\n    parameters: { P: { pattern: "(" } }\n',
        /regular expression/,
      ],
      ['templates:\n  - name: T\n    identities: [a]\n  - name: T\n    identities: [b]\n', /defined twice/],
      ['templates:\n  - name: T\n    identities: [a]\n    unknown: 1\n', /unknown|Unrecognized/i],
      [
        'templates:\n  - name: T\n    identities: [a]\n    parameters: { P: { default: x, pattern: "[0-9]+" } }\n',
        /default does not match/,
      ],
    ]
    for (const [text, problem] of bad) {
      const path = await file(text)
      expect(() => loadTemplates(path)).toThrow(problem)
    }
  })

  it('fill: required, default, pattern (whole value), the thing name grammar', async () => {
    const t = loadTemplates(
      await file(
        "templates:\n  - name: T\n    identities: ['*']\n    parameters:\n      S: { required: true, pattern: '[0-9]+' }\n    thingName: 'x/{S}'\n",
      ),
    ).get('T')
    if (!t) throw new Error('no template')
    expect(() => fill(t, 'd', {})).toThrow(/S is required/)
    expect(() => fill(t, 'd', { S: '12a' })).toThrow(/does not match/)
    expect(() => fill(t, 'd', { S: '12' })).toThrow(/thing name/)
  })

  it('a bad templates file at start stops the bridge (fail closed)', async () => {
    const path = await file('templates:\n  - name: T\n')
    await expect(startTestBridge(['aws.enabled=true', `aws.templatesFile=${path}`])).rejects.toThrow(
      /aws\.templatesFile/,
    )
  })
})
