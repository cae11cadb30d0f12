import { createHash } from 'node:crypto'
import { constants, mkdirSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import { replaceFile } from '../common/replace-file.js'
import type { Credentials } from '../issuers/issuer.js'
import { certificatesFromPem } from '../pki/pem.js'
import type { IssuanceEvent } from '../registry/registry.js'

export type { IssuanceEvent } from '../registry/registry.js'

/** AuditRecord is one issuance: never a key, only what identifies the certificate. */
export interface AuditRecord {
  readonly time: string
  readonly identity: string
  readonly serialNumber: string
  readonly notAfter: string
  readonly sha256Fingerprint: string
  readonly issuer: string
  readonly keySource: 'device' | 'bridge'
  /** The gateway that registered this downstream device; absent when the device registered itself. */
  readonly registeredBy?: string
  /** The request's requestId, when it had one. */
  readonly requestId?: string
  /** SHA-256 (hex) of the idempotency key: identity and request content. */
  readonly requestHash?: string
  /** Server-key mode: the serial of the certificate this one replaces for a retried request (its key is gone). */
  readonly supersedes?: string
  /** The lifecycle step (absent in records written before lifecycle events existed). */
  readonly event?: IssuanceEvent
}

/** auditRecordFor derives an audit record from issued credentials, without parsing the certificate again. */
export function auditRecordFor(
  credentials: Pick<Credentials, 'certificatePem' | 'serialNumber' | 'notAfter'>,
  fields: Pick<
    AuditRecord,
    | 'identity'
    | 'issuer'
    | 'keySource'
    | 'registeredBy'
    | 'requestId'
    | 'requestHash'
    | 'supersedes'
    | 'event'
  >,
): AuditRecord {
  const der = certificatesFromPem(credentials.certificatePem)[0] ?? Buffer.alloc(0)
  return {
    time: new Date().toISOString(),
    ...fields,
    serialNumber: credentials.serialNumber,
    notAfter: credentials.notAfter.toISOString(),
    sha256Fingerprint: createHash('sha256').update(der).digest('hex'),
  }
}

/**
 * AuditLog appends JSON lines (audit records by default; the issued index uses it too) to a file opened with O_DSYNC, so an append resolves only once it is on disk. Appends that arrive while a
 * write is under way are committed together in the next write (group commit), so the cost of fsync is
 * shared under load.
 */
export class AuditLog<T = AuditRecord> {
  readonly #path: string
  #file: Promise<FileHandle> | undefined
  #queue: { line: string; resolve: () => void; reject: (err: unknown) => void }[] = []
  #flushing: Promise<void> | undefined
  #rewriting = false

  constructor(path: string) {
    this.#path = path
  }

  /** append resolves once the record is durably on disk. */
  append(record: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: `${JSON.stringify(record)}\n`, resolve, reject })
      if (!this.#rewriting) this.#flushing ??= this.#flush()
    })
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#rewriting) {
        const batch = this.#queue
        this.#queue = []
        try {
          this.#file ??= this.#open()
          const file = await this.#file
          // opened with O_DSYNC: the write returns once the data is on disk, in one thread-pool round trip
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
    return open(
      this.#path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC,
      0o600,
    )
  }

  /**
   * rewrite replaces the file with `records()` (durably, by rename), taken once every earlier append is on
   * disk; appends made meanwhile wait and go to the new file. Used to compact the issued index.
   */
  async rewrite(records: () => readonly T[]): Promise<void> {
    if (this.#rewriting) return
    this.#rewriting = true
    try {
      await this.#flushing
      const file = await this.#file?.catch(() => undefined)
      this.#file = undefined
      await file?.close()
      mkdirSync(dirname(this.#path), { recursive: true })
      const text = records()
        .map((r) => `${JSON.stringify(r)}\n`)
        .join('')
      await replaceFile(this.#path, text, 0o600)
    } finally {
      this.#rewriting = false
      if (this.#queue.length > 0) this.#flushing ??= this.#flush()
    }
  }

  /** close waits for pending appends and closes the file. */
  async close(): Promise<void> {
    await this.#flushing
    const file = await this.#file?.catch(() => undefined)
    this.#file = undefined
    await file?.close()
  }
}
