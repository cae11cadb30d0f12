/** WORKER_SLOT_ENV carries a worker's slot (0..N-1) from the primary to the worker it starts. */
export const WORKER_SLOT_ENV = 'REGISTRATION_BRIDGE_WORKER_SLOT'

/**
 * workerSuffix names a worker's own files (`.w<slot>`), e.g. its issued index: each process compacts its own
 * index, and a worker that replaces a dead one takes its slot and reads its index back. Empty outside workers.
 */
export function workerSuffix(env: NodeJS.ProcessEnv = process.env): string {
  const slot = env[WORKER_SLOT_ENV]
  return slot === undefined || !/^\d+$/.test(slot) ? '' : `.w${slot}`
}
