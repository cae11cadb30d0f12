import { createHash } from 'node:crypto'
import type { RegistrationRequest } from '../protocol/messages.js'

/**
 * idempotencyKey identifies a request: the same identity sending the same request (through the same gateway,
 * for a downstream device) is the same registration.
 */
export function idempotencyKey(
  identity: string,
  request: RegistrationRequest,
  registeredBy?: string,
): string {
  const parts = registeredBy === undefined ? [identity, request] : [identity, request, registeredBy]
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex')
}
