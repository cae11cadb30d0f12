import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

// The import-graph rule of `npm run lint` (scripts/check-imports.mjs), run as CI runs it, on src/ and on small
// trees that break it one way each.

const script = join(import.meta.dirname, '../../scripts/check-imports.mjs')
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function check(dir?: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, dir === undefined ? [script] : [script, dir], {
    cwd: join(import.meta.dirname, '../..'),
    encoding: 'utf8',
  })
  return { status: r.status, output: r.stdout + r.stderr }
}

/** tree writes files (path under src → source text) into a new temporary src directory. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'import-rule-'))
  dirs.push(dir)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

const base = {
  'common/a.ts': 'export const a = 1\n',
  'protocol/identity.ts':
    "import { a } from '../common/a.js'\nexport type Id = { id: string; n: typeof a }\n",
  'state/s.ts': "import type { Id } from '../protocol/identity.js'\nexport type S = Id\n",
  'registry/r.ts': 'export const r = 1\n',
  'broker/b.ts': "import type { Id } from '../protocol/identity.js'\nexport type B = Id\n",
  'registration/service.ts':
    "import type { Id } from '../protocol/identity.js'\nimport type { S } from '../state/s.js'\nexport type R = [Id, S]\n",
  'app/start.ts':
    "import type { B } from '../broker/b.js'\nimport type { R } from '../registration/service.js'\nexport type X = [B, R]\n",
}

describe('import rule', () => {
  it('passes on src/ as it is', () => {
    const { status, output } = check()
    expect(output).toMatch(/every import points down, no cycles/)
    expect(status).toBe(0)
  })

  it('passes on a tree whose imports all point down', () => {
    expect(check(tree(base)).status).toBe(0)
  })

  it('fails on an import of a higher layer, a type-only one too', () => {
    const { status, output } = check(
      tree({
        ...base,
        'state/s.ts': "import type { R } from '../registration/service.js'\nexport type S = R\n",
      }),
    )
    expect(status).toBe(1)
    expect(output).toContain('state/s.ts -> registration/service.ts: stores and issuers imports higher rooms')
  })

  it('fails when rooms of one layer import each other (registration -> broker, registry -> state)', () => {
    const { status, output } = check(
      tree({
        ...base,
        'registration/service.ts': "import type { B } from '../broker/b.js'\nexport type R = B\n",
        'registry/r.ts': "export const r = async () => (await import('../state/s.js')) && 1\n",
      }),
    )
    expect(status).toBe(1)
    expect(output).toContain('registration/service.ts -> broker/b.ts: rooms of one layer (rooms)')
    expect(output).toContain('registry/r.ts -> state/s.ts: rooms of one layer (stores and issuers)')
  })

  it('fails on a cycle inside one room', () => {
    const { status, output } = check(
      tree({
        ...base,
        'registry/r.ts': "import { q } from './q.js'\nexport const r = q\n",
        'registry/q.ts': "import type { r } from './r.js'\nexport const q = 1 as unknown as typeof r\n",
      }),
    )
    expect(status).toBe(1)
    expect(output).toContain('cycle: registry/q.ts -> registry/r.ts')
  })

  it('fails on a file in no layer and on an import it cannot resolve', () => {
    const { status, output } = check(
      tree({ ...base, 'elsewhere/x.ts': "import { a } from '../common/missing.js'\nexport const x = a\n" }),
    )
    expect(status).toBe(1)
    expect(output).toContain('elsewhere/x.ts: in no layer')
    expect(output).toContain("elsewhere/x.ts: cannot resolve '../common/missing.js'")
  })

  it('ignores imports in comments', () => {
    const files = {
      ...base,
      'state/s.ts':
        "// import type { R } from '../registration/service.js'\n/* import '../app/start.js' */\nexport type S = 1\n",
    }
    expect(check(tree(files)).status).toBe(0)
  })
})
