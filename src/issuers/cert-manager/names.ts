import { createHash } from 'node:crypto'

/** Every object the bridge creates carries this label; its informers watch only such objects. */
const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
const MANAGED_BY = 'mqtt-registration-bridge'
export const LABEL_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`
/** The original device id, which a DNS-1123 name may not be able to hold as it is. */
export const DEVICE_ID_ANNOTATION = 'registration.mqtt-bridge.dev/device-id'

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** base32 encodes bytes in lower-case RFC 4648 base32 without padding: only [a-z2-7]. */
function base32(bytes: Buffer): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}

/**
 * resourceName maps a device id to a DNS-1123 object name, deterministically and without collisions:
 * an id that is already a lower-case DNS label becomes `dev-<id>`; any other id becomes `dex-<base32(id)>`.
 * The prefixes keep the two forms apart, and each form is one-to-one.
 */
export function resourceName(identity: string): string {
  if (DNS_LABEL.test(identity)) return `dev-${identity}`
  return `dex-${base32(Buffer.from(identity, 'utf8'))}`
}

/** secretName is where cert-manager writes a device's key and certificate in server-side key mode. */
export const secretName = (identity: string): string => `${resourceName(identity)}-tls`

/** certificateRequestName is deterministic for one identity and CSR, so a retry finds the request again. */
export function certificateRequestName(identity: string, csrDer: Buffer): string {
  const digest = createHash('sha256').update(csrDer).digest().subarray(0, 8)
  return `${resourceName(identity)}-${base32(digest)}`
}

/** objectMetadata is the metadata every bridge-created object carries. */
export function objectMetadata(name: string, namespace: string, identity: string) {
  return {
    name,
    namespace,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
    annotations: { [DEVICE_ID_ANNOTATION]: identity },
  }
}
