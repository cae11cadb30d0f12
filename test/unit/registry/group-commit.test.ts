import { describe, expect, it } from 'vitest'
import { GroupCommit } from '../../../src/registry/group-commit.js'

/** store is a tiny transactional store: a transaction applies all its items or, when one is bad, none. */
function store() {
  const committed: string[] = []
  const transactions: string[][] = []
  const apply = (items: readonly string[]) => {
    if (items.some((i) => i.startsWith('bad'))) throw new Error(`bad item in ${items.join(',')}`)
    transactions.push([...items])
    committed.push(...items)
  }
  let syncs = 0
  const commits = new GroupCommit<string>({
    commitAll: apply,
    commitOne: (item) => apply([item]),
    sync: async () => {
      syncs++
    },
  })
  return { commits, committed, transactions, syncs: () => syncs }
}

describe('GroupCommit', () => {
  it('commits the items of one turn in one transaction and syncs once', async () => {
    const s = store()
    await Promise.all(['a', 'b', 'c'].map((i) => s.commits.add(i)))
    expect(s.transactions).toEqual([['a', 'b', 'c']])
    expect(s.syncs()).toBe(1)
    expect(s.commits.syncs).toBe(1)
  })

  it('a failing item fails alone: the others are committed one by one, then synced once', async () => {
    const s = store()
    const results = await Promise.allSettled(['a', 'bad', 'c'].map((i) => s.commits.add(i)))
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(s.transactions).toEqual([['a'], ['c']])
    expect(s.commits.syncs).toBe(1)
  })

  it('a turn with nothing committed is not synced', async () => {
    const s = store()
    const results = await Promise.allSettled(['bad-1', 'bad-2'].map((i) => s.commits.add(i)))
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(s.syncs()).toBe(0)
    expect(s.commits.syncs).toBe(0)
    await s.commits.add('d')
    expect(s.commits.syncs).toBe(1)
  })
})
