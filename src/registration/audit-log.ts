import { constants, mkdirSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { NewIssuance } from '../registry/registry.js'

/**
 * AuditRecord is one issuance's audit line: never a key, only what identifies the certificate, with its dates as
 * ISO text (`event` is absent in lines written before lifecycle events existed).
 */
export type AuditRecord = Pick<
  NewIssuance,
  | 'identity'
  | 'serialNumber'
  | 'sha256Fingerprint'
  | 'issuer'
  | 'keySource'
  | 'registeredBy'
  | 'requestId'
  | 'requestHash'
  | 'supersedes'
  | 'event'
  | 'endpoint'
> & { readonly time: string; readonly notAfter: string }

/** auditRecordOf is the audit line of a committed issuance (undefined fields are left out of the JSON line). */
export function auditRecordOf(i: NewIssuance): AuditRecord {
  return {
    time: i.issuedAt.toISOString(),
    identity: i.identity,
    registeredBy: i.registeredBy,
    requestId: i.requestId,
    requestHash: i.requestHash,
    supersedes: i.supersedes,
    event: i.event,
    endpoint: i.endpoint,
    serialNumber: i.serialNumber,
    notAfter: i.notAfter.toISOString(),
    sha256Fingerprint: i.sha256Fingerprint,
    issuer: i.issuer,
    keySource: i.keySource,
  }
}

/**
 * AuditLog appends JSON lines (audit records by default; the CLI's lifecycle events too) to a file. Appends that
 * arrive while a write is under way go together in the next write (group commit): a sync's cost is shared.
 */
export class AuditLog<T = AuditRecord> {
  readonly #path: string
  #file: Promise<FileHandle> | undefined
  #queue: { line: string; resolve: () => void; reject: (err: unknown) => void }[] = []
  #flushing: Promise<void> | undefined

  readonly #durable: boolean

  /**
   * `durable` (the default) opens the file with O_DSYNC: an append resolves once it is on disk. The issuance audit
   * trail is written without it: its records are durable in the registry, and a lost line is written again at
   * the next start (audit-trail.ts).
   */
  constructor(path: string, options: { durable?: boolean } = {}) {
    this.#path = path
    this.#durable = options.durable ?? true
  }

  /** append resolves once the record is written (on disk, when durable). */
  append(record: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: `${JSON.stringify(record)}\n`, resolve, reject })
      this.#flushing ??= this.#flush()
    })
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue
        this.#queue = []
        try {
          this.#file ??= this.#open()
          const file = await this.#file
          // with O_DSYNC the write returns once the data is on disk, in one thread-pool round trip
          await file.appendFile(batch.map((b) => b.line).join(''))
          for (const b of batch) b.resolve()
        } catch (err) {
          this.#file = undefined
          for (const b of batch) b.reject(err)
        }
      }
    } finally {
      // no await between the last check of the queue and this line: an append cannot slip in unflushed
      this.#flushing = undefined
    }
  }

  #open(): Promise<FileHandle> {
    mkdirSync(dirname(this.#path), { recursive: true })
    const sync = this.#durable ? constants.O_DSYNC : 0
    return open(this.#path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | sync, 0o600)
  }

  /** close waits for pending appends and closes the file. */
  async close(): Promise<void> {
    await this.#flushing
    const file = await this.#file?.catch(() => undefined)
    this.#file = undefined
    await file?.close()
  }
}
