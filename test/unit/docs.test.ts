import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { envName, settingLeaves } from '../../src/config/load.js'
import { ERROR_CODES } from '../../src/protocol/errors.js'

const protocolDoc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
const configDoc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')

/** tableRows returns the backquoted first cell of every table row under a heading. */
function firstCells(doc: string, heading: string): string[] {
  const section = doc.split(heading)[1]?.split('\n## ')[0] ?? ''
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '')
}

describe('docs/protocol.md lists exactly the error codes in src/protocol/errors.ts', () => {
  it('the same codes, in the same order', () => {
    expect(firstCells(protocolDoc, '## Error codes')).toEqual(Object.keys(ERROR_CODES))
  })

  it('with the same retryability', () => {
    const section = protocolDoc.split('## Error codes')[1] ?? ''
    for (const [code, { retryable }] of Object.entries(ERROR_CODES)) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${code}\``)) ?? ''
      expect(row.split('|')[2]?.trim(), code).toBe(retryable ? 'yes' : 'no')
    }
  })
})

describe('docs/configuration.md lists exactly the settings of the schema', () => {
  const leaves = settingLeaves()

  it('every setting, and no other', () => {
    expect(firstCells(configDoc, '## Settings').sort()).toEqual(leaves.map((l) => l.path.join('.')).sort())
  })

  it('with its environment variable', () => {
    for (const leaf of leaves) {
      const row = configDoc.split('\n').find((l) => l.startsWith(`| \`${leaf.path.join('.')}\``)) ?? ''
      expect(row, leaf.path.join('.')).toContain(`\`${envName(leaf.path)}\``)
    }
  })
})
