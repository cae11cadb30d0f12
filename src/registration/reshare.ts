import type { SharedState } from '../state/shared-state.js'
import type { IndexEntry } from './issued-index.js'

/**
 * reshare shares again, at start, the answers this process's issued index holds (a process killed between
 * its index and the shared state leaves them there): the reply of a CSR-mode issuance, the serial of another.
 */
export async function reshare(
  state: SharedState,
  entries: readonly IndexEntry[],
  ttlSeconds: number,
): Promise<void> {
  const now = Date.now()
  for (const { key, record, reply } of entries) {
    const ttlMs = ttlSeconds * 1000 - (now - Date.parse(record.time))
    if (ttlMs <= 0) continue
    await state.share(
      key,
      reply ? { serialNumber: record.serialNumber, reply } : { serialNumber: record.serialNumber },
      ttlMs,
    )
  }
}
