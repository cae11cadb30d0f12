import { type DestinationStream, type Logger, pino } from 'pino'

/**
 * REDACTED_PATHS are removed from every log line: each key field, at the top level and one level down. The bridge
 * never logs credentials on purpose; this is the safety net should a reply or key object ever reach a log call.
 */
export const REDACTED_PATHS = ['privateKey', 'privateKeyPem', 'key', 'keyPem', 'pkcs12', 'password'].flatMap(
  (k) => [k, `*.${k}`],
)

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mqtt-registration-bridge' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  )
}
