import { createHash, X509Certificate } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { dirname } from 'node:path'

/** AuditRecord is one issuance: never a key, only what identifies the certificate. */
export interface AuditRecord {
  readonly time: string
  readonly identity: string
  readonly serialNumber: string
  readonly notAfter: string
  readonly sha256Fingerprint: string
  readonly issuer: string
  readonly keySource: 'device' | 'bridge'
}

/** auditRecordFor derives an audit record from an issued certificate PEM. */
export function auditRecordFor(
  certificatePem: string,
  fields: Pick<AuditRecord, 'identity' | 'issuer' | 'keySource'>,
): AuditRecord {
  const cert = new X509Certificate(certificatePem)
  return {
    time: new Date().toISOString(),
    ...fields,
    serialNumber: cert.serialNumber.toLowerCase(),
    notAfter: new Date(cert.validTo).toISOString(),
    sha256Fingerprint: createHash('sha256').update(cert.raw).digest('hex'),
  }
}

/**
 * AuditLog appends JSON lines to a file and fsyncs before an append resolves. Appends that arrive while a
 * write is under way are committed together in the next write (group commit), so the cost of fsync is
 * shared under load.
 */
export class AuditLog {
  readonly #path: string
  #file: Promise<FileHandle> | undefined
  #queue: { line: string; resolve: () => void; reject: (err: unknown) => void }[] = []
  #flushing: Promise<void> | undefined

  constructor(path: string) {
    this.#path = path
  }

  /** append resolves once the record is durably on disk. */
  append(record: AuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: `${JSON.stringify(record)}\n`, resolve, reject })
      this.#flushing ??= this.#flush().finally(() => {
        this.#flushing = undefined
      })
    })
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue
      this.#queue = []
      try {
        this.#file ??= this.#open()
        const file = await this.#file
        await file.appendFile(batch.map((b) => b.line).join(''))
        await file.datasync()
        for (const b of batch) b.resolve()
      } catch (err) {
        this.#file = undefined
        for (const b of batch) b.reject(err)
      }
    }
  }

  #open(): Promise<FileHandle> {
    mkdirSync(dirname(this.#path), { recursive: true })
    return open(this.#path, 'a', 0o600)
  }

  /** close waits for pending appends and closes the file. */
  async close(): Promise<void> {
    await this.#flushing
    const file = await this.#file?.catch(() => undefined)
    this.#file = undefined
    await file?.close()
  }
}
