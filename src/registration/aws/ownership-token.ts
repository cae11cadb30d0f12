import { createHash, randomBytes } from 'node:crypto'

/**
 * An ownership token of AWS fleet provisioning: 32 random bytes, base64url, handed to the device with its pending
 * certificate and proven at RegisterThing. Only its SHA-256 is recorded (with the certificate, in the registry):
 * the token itself is never stored, logged or replayed — a replayed create answer carries a fresh one.
 */

/** newOwnershipToken makes a token and the hash the registry records. */
export function newOwnershipToken(): { readonly token: string; readonly sha256: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, sha256: tokenSha256(token) }
}

/** tokenSha256 is the hash under which a token is recorded, hex. */
export const tokenSha256 = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex')
