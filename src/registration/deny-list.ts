import type { Logger } from 'pino'
import YAML from 'yaml'
import { z } from 'zod'
import { type ReadText, ReloadableFile, readReloadedText } from '../config/reloadable-file.js'

/** PresentedCertificate is what a connection's client certificate says: identity, serial and fingerprint. */
export interface PresentedCertificate {
  readonly identity: string
  /** Serial number, hex. */
  readonly serialNumber: string
  /** SHA-256 of the certificate DER, hex. */
  readonly sha256Fingerprint: string
}

/** DenyList is a loaded deny list: identities, certificate serial numbers, certificate fingerprints. */
export interface DenyList {
  readonly identities: ReadonlySet<string>
  readonly serials: ReadonlySet<string>
  readonly fingerprints: ReadonlySet<string>
}

const HEX = /^[0-9A-Fa-f]+(?::[0-9A-Fa-f]+)*$/
const hexList = z.array(z.string().regex(HEX, 'must be hex (colons allowed)')).default([])
const fileSchema = z.strictObject({
  identities: z.array(z.string().min(1)).default([]),
  serials: hexList,
  fingerprints: hexList,
})

/** normalSerial writes a serial as lower-case hex without colons or leading zeros (how openssl and Node differ). */
export const normalSerial = (hex: string): string =>
  hex
    .replaceAll(':', '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '')
/** normalFingerprint writes a fingerprint as lower-case hex without colons. */
export const normalFingerprint = (hex: string): string => hex.replaceAll(':', '').toLowerCase()

/**
 * loadDenyList reads a deny list file (YAML or JSON); a file that does not validate throws, naming the field. A
 * file with no document (empty, white space or comments only) throws too: an empty list is `identities: []`.
 */
export function loadDenyList(file: string, read: ReadText = readReloadedText): DenyList {
  let parsed: unknown
  try {
    parsed = YAML.parse(read(file))
  } catch (err) {
    throw new Error(`cannot read the deny list: ${(err as Error).message}`)
  }
  if (parsed === null || parsed === undefined)
    throw new Error('the deny list file holds no list; an empty list is written `identities: []`')
  const result = fileSchema.safeParse(parsed)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new Error(`deny list ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`)
  }
  return {
    identities: new Set(result.data.identities),
    serials: new Set(result.data.serials.map(normalSerial)),
    fingerprints: new Set(result.data.fingerprints.map(normalFingerprint)),
  }
}

/** deniedReason says why a presented certificate is denied, or undefined when it is not. */
export function deniedReason(list: DenyList, cert: PresentedCertificate): string | undefined {
  if (list.identities.has(cert.identity)) return 'the identity is on the deny list'
  if (list.serials.has(normalSerial(cert.serialNumber))) return 'the certificate serial is on the deny list'
  if (list.fingerprints.has(normalFingerprint(cert.sha256Fingerprint)))
    return 'the certificate fingerprint is on the deny list'
  return undefined
}

/** DenyListSource is the deny list in force, reloaded without a restart (file watch, SIGHUP). */
export class DenyListSource extends ReloadableFile<DenyList> {
  constructor(file: string | undefined, logger: Logger) {
    super(file, logger, {
      what: 'deny list',
      load: loadDenyList,
      empty: { identities: new Set(), serials: new Set(), fingerprints: new Set() },
      describe: (l) => ({
        identities: l.identities.size,
        serials: l.serials.size,
        fingerprints: l.fingerprints.size,
      }),
    })
  }

  /** denied says why a certificate is denied by the list in force, or undefined. */
  denied(cert: PresentedCertificate): string | undefined {
    return deniedReason(this.current, cert)
  }
}
