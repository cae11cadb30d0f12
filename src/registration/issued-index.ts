import { constants } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { LRUCache } from 'lru-cache'
import type { IssuedReply } from '../protocol/messages.js'
import { AuditLog, type AuditRecord } from './audit-log.js'

/** IndexEntry is one issuance: its audit record and, in CSR mode, the public reply (never a key). */
export interface IndexEntry {
  readonly key: string
  readonly record: AuditRecord
  readonly reply?: IssuedReply
}

/** IssuedIndexOptions: the index file (beside the audit log), and how long and how many entries it keeps. */
export interface IssuedIndexOptions {
  readonly path: string
  readonly ttlSeconds: number
  readonly maxEntries: number
}

const TAIL_BYTES = 64 * 1024

/**
 * IssuedIndex makes answers survive a crash: each issuance is written to the index (durably) before the
 * audit log, and both before the reply is sent. At start the index is read back (entries older than the
 * reply-cache lifetime are dropped and the file rewritten without them), and index entries the audit log
 * missed because the process died between the two writes are appended to the audit log.
 */
export class IssuedIndex {
  readonly #options: IssuedIndexOptions
  readonly #audit: AuditLog
  readonly #file: AuditLog<IndexEntry> | undefined
  readonly #entries: LRUCache<string, IndexEntry> | undefined
  /** Lines appended since the file was last compacted. */
  #appended = 0

  constructor(options: IssuedIndexOptions, audit: AuditLog) {
    this.#options = options
    this.#audit = audit
    if (options.ttlSeconds <= 0 || options.maxEntries <= 0) return
    this.#file = new AuditLog<IndexEntry>(options.path)
    this.#entries = new LRUCache<string, IndexEntry>({
      max: options.maxEntries,
      ttl: options.ttlSeconds * 1000,
    })
  }

  /** open loads the live entries, completes the audit log, and compacts the index file. */
  async open(auditPath: string): Promise<void> {
    if (!this.#entries) return
    const cutoff = Date.now() - this.#options.ttlSeconds * 1000
    const text = await readFile(this.#options.path, 'utf8').catch(() => '')
    const live = parseLines<IndexEntry>(text).filter((e) => Date.parse(e.record.time) >= cutoff)
    for (const e of live) {
      const age = Date.now() - Date.parse(e.record.time)
      this.#entries.set(e.key, e, { ttl: Math.max(1, this.#options.ttlSeconds * 1000 - age) })
    }
    for (const e of unaudited(live, await tailLines(auditPath))) await this.#audit.append(e.record)
    await this.#file?.rewrite(() => live)
  }

  /** #live is every entry within the lifetime, oldest first: the order they were written in. */
  #live(): IndexEntry[] {
    const cutoff = Date.now() - this.#options.ttlSeconds * 1000
    const entries: IndexEntry[] = []
    for (const e of this.#entries?.rvalues() ?? [])
      if (e && Date.parse(e.record.time) >= cutoff) entries.push(e)
    return entries
  }

  /** entries are the live entries, oldest first (to share them again at start). */
  entries(): IndexEntry[] {
    return this.#live()
  }

  /** lookup returns the entry of an issuance for this idempotency key within the lifetime. */
  lookup(key: string): IndexEntry | undefined {
    // peek: lookups never reorder entries, so the cache's order stays the order they were written in
    return this.#entries?.peek(key)
  }

  /**
   * record writes the entry to the index, then its audit record to the audit log; both durably. `beforeAudit`
   * runs in between (the service shares the answer with other processes there: a process killed at any point
   * leaves the index to complete the audit log and to share again at its next start).
   */
  async record(entry: IndexEntry, beforeAudit?: () => Promise<void>): Promise<void> {
    if (this.#file && this.#entries) {
      await this.#file.append(entry)
      this.#entries.set(entry.key, entry)
    }
    await beforeAudit?.()
    await this.#audit.append(entry.record)
    // the file keeps at most the live entries and one compaction interval of appends
    if (this.#file && ++this.#appended > Math.max(1000, this.#options.maxEntries)) {
      this.#appended = 0
      await this.#file.rewrite(() => this.#live())
    }
  }

  /** close waits for pending writes and forgets the entries held in memory. */
  async close(): Promise<void> {
    await this.#file?.close()
    this.#entries?.clear()
  }
}

function parseLines<T>(text: string): T[] {
  const out: T[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    try {
      out.push(JSON.parse(line) as T)
    } catch {
      // a line cut short by a crash mid-write: its issuance was never answered
    }
  }
  return out
}

/** tailLines reads the last complete records of a JSON-lines file (its last 64 KiB). */
async function tailLines(path: string): Promise<AuditRecord[]> {
  const file = await open(path, constants.O_RDONLY).catch(() => undefined)
  if (!file) return []
  try {
    const { size } = await file.stat()
    const length = Math.min(size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    await file.read(buffer, 0, length, size - length)
    return parseLines<AuditRecord>(buffer.toString('utf8'))
  } finally {
    await file.close()
  }
}

/**
 * unaudited: what the index has and the audit log's tail lacks. Workers (serve --workers) append to one audit
 * log, each from its own index, so the tail is matched by serial number, not by position; index entries older
 * than the tail's oldest record were audited before it.
 */
function unaudited(entries: IndexEntry[], tail: readonly AuditRecord[]): IndexEntry[] {
  const oldest = tail[0]
  if (!oldest) return entries
  const audited = new Set(tail.map((r) => r.serialNumber))
  return entries.filter((e) => !audited.has(e.record.serialNumber) && e.record.time >= oldest.time)
}
