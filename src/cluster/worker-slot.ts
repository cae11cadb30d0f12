/** WORKER_SLOT_ENV carries a worker's slot (0..N-1) from the primary to the worker it starts. */
export const WORKER_SLOT_ENV = 'REGISTRATION_BRIDGE_WORKER_SLOT'
