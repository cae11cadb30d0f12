import { randomUUID } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { NewIssuance, Registry } from '../registry/registry.js'
import { AuditLog, type AuditRecord, auditRecordOf } from './audit-log.js'

const TAIL_BYTES = 64 * 1024

/** ActivationRecord is the audit line of an AWS RegisterThing that activated a pending certificate. */
export interface ActivationRecord {
  readonly time: string
  readonly event: 'activated'
  readonly identity: string
  readonly serialNumber: string
  readonly template: string
  readonly thingName: string
}

/**
 * AuditTrail writes the audit log (JSON lines for SIEMs) from committed issuances: the registry is the durable
 * record, the audit line follows its commit without a sync of its own. The guarantee: every issuance this state
 * directory committed appears in its audit log, in commit order, after a crash too — at start, `complete` writes
 * the committed records the log's tail lacks (a line lost with the process), matched by serial number.
 */
export class AuditTrail {
  /** This state directory's writer id, stored with each record it commits (see writerId). */
  readonly writer: string
  readonly #path: string
  readonly #log: AuditLog<AuditRecord | ActivationRecord>
  readonly #logger: Logger

  constructor(path: string, writer: string, logger: Logger) {
    this.#path = path
    this.writer = writer
    this.#log = new AuditLog<AuditRecord | ActivationRecord>(path, { durable: false })
    this.#logger = logger
  }

  /** committed writes the audit line of an issuance the registry has committed (errors are logged). */
  committed(entry: NewIssuance): void {
    this.#log
      .append(auditRecordOf(entry))
      .catch((err: unknown) =>
        this.#logger.error(
          { err, serialNumber: entry.serialNumber },
          'audit line not written (the registry holds it)',
        ),
      )
  }

  /**
   * activated writes the line of a pending certificate RegisterThing activated (AWS fleet provisioning), after the
   * registry's update; a line a crash loses is not written again (the registry holds the activation).
   */
  activated(record: Omit<ActivationRecord, 'time' | 'event'>): void {
    this.#log
      .append({ time: new Date().toISOString(), event: 'activated', ...record })
      .catch((err: unknown) =>
        this.#logger.error(
          { err, serialNumber: record.serialNumber },
          'audit line not written (the registry holds it)',
        ),
      )
  }

  /**
   * complete appends what this writer committed that the log's tail lacks: since the tail's oldest line, or, for
   * an empty or missing log, within the last `windowMs`. It returns how many lines it wrote.
   */
  async complete(registry: Registry, windowMs: number): Promise<number> {
    const tail = await tailRecords(this.#path)
    const audited = new Set(tail.map((r) => r.serialNumber))
    const since = tail[0] ? new Date(tail[0].time) : new Date(Date.now() - windowMs)
    let written = 0
    for (const record of await registry.committedSince(this.writer, since)) {
      if (audited.has(record.serialNumber)) continue
      await this.#log.append(auditRecordOf(record))
      written++
    }
    if (written > 0) this.#logger.warn({ written }, 'audit log completed from the registry')
    return written
  }

  close(): Promise<void> {
    return this.#log.close()
  }
}

/**
 * writerId is the id of a state directory (`<stateDir>/writer-id`, made once): the replicas sharing a PostgreSQL
 * registry each have their own; the workers of one bridge share it, each adding its slot (app/start.ts).
 */
export async function writerId(file: string): Promise<string> {
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim()
  if (existing) return existing
  await mkdir(dirname(file), { recursive: true })
  try {
    await writeFile(file, `${randomUUID()}\n`, { flag: 'wx', mode: 0o600 })
  } catch (err) {
    // another worker made it first: theirs is the id
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return (await readFile(file, 'utf8')).trim()
}

/** tailRecords reads the last complete lines of a JSON-lines file (its last 64 KiB). */
async function tailRecords(path: string): Promise<AuditRecord[]> {
  const file = await open(path, constants.O_RDONLY).catch(() => undefined)
  if (!file) return []
  try {
    const { size } = await file.stat()
    const length = Math.min(size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    await file.read(buffer, 0, length, size - length)
    const records: AuditRecord[] = []
    // a tail that starts mid-file starts mid-line: its first line is cut
    const lines = buffer
      .toString('utf8')
      .split('\n')
      .slice(size > length ? 1 : 0)
    for (const line of lines) {
      if (!line) continue
      try {
        const record = JSON.parse(line) as AuditRecord
        if (typeof record.serialNumber === 'string' && typeof record.time === 'string') records.push(record)
      } catch {
        // a line cut short by a crash mid-write: its record is written again
      }
    }
    return records
  } finally {
    await file.close()
  }
}
