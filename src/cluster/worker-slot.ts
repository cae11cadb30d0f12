/** WORKER_SLOT_ENV carries a worker's slot (0..N-1) from the primary to the worker it starts. */
export const WORKER_SLOT_ENV = 'REGISTRATION_BRIDGE_WORKER_SLOT'

/**
 * workerSuffix names what is a worker's own (`.w<slot>`), e.g. the records it commits: a worker that replaces a
 * dead one takes its slot, and with it what the dead one left to finish (its audit lines). Empty outside workers.
 */
export function workerSuffix(env: NodeJS.ProcessEnv = process.env): string {
  const slot = env[WORKER_SLOT_ENV]
  return slot === undefined || !/^\d+$/.test(slot) ? '' : `.w${slot}`
}
