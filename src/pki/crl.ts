import { extension, type Signer, signed } from './certificate.js'
import { explicit, sequence, time, tlv, unsignedInteger } from './der.js'

/** RevokedEntry is one certificate a CRL lists: its serial (hex), when it was revoked and the RFC 5280 reason code. */
interface RevokedEntry {
  readonly serialNumber: string
  readonly revokedAt: Date
  /** CRLReason code (RFC 5280 5.3.1); 0 (unspecified) is left out of the entry, as the RFC asks. */
  readonly reasonCode: number
}

/** CrlOptions are the CRL's own fields. */
interface CrlOptions {
  readonly thisUpdate: Date
  readonly nextUpdate: Date
  /** The CRL number (RFC 5280 5.2.3): must grow with every CRL the CA issues. */
  readonly crlNumber: bigint
}

function revokedCertificate(entry: RevokedEntry): Buffer {
  const extensions =
    entry.reasonCode === 0
      ? []
      : // reasonCode (2.5.29.21) is an ENUMERATED
        [sequence(extension('2.5.29.21', tlv(0x0a, Buffer.from([entry.reasonCode]))))]
  return sequence(unsignedInteger(BigInt(`0x${entry.serialNumber}`)), time(entry.revokedAt), ...extensions)
}

/**
 * buildCrl makes a version 2 CRL (RFC 5280 5.1) signed by `signer` in DER: issuer, thisUpdate, nextUpdate, the
 * revoked certificates (the field is left out when there are none, as 5.1.2.6 asks), and the authority key
 * identifier and CRL number extensions that 5.2 requires of a conforming CA.
 */
export function buildCrl(signer: Signer, revoked: readonly RevokedEntry[], options: CrlOptions): Buffer {
  const crlExtensions = explicit(
    0,
    sequence(
      extension('2.5.29.35', sequence(tlv(0x80, signer.keyIdentifier))),
      extension('2.5.29.20', unsignedInteger(options.crlNumber)),
    ),
  )
  const tbs = sequence(
    unsignedInteger(1), // v2
    signer.scheme.algorithmIdentifier,
    signer.subject,
    time(options.thisUpdate),
    time(options.nextUpdate),
    ...(revoked.length > 0 ? [sequence(...revoked.map(revokedCertificate))] : []),
    crlExtensions,
  )
  return signed(tbs, signer.key, signer.scheme)
}
