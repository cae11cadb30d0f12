import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { Logger } from 'pino'
import { checkCaBundle } from '../broker/tls-material.js'
import type { CleanupStack } from '../common/cleanup-stack.js'
import { type Config, ConfigError } from '../config/load.js'
import { type ReadText, ReloadableFile } from '../config/reloadable-file.js'
import type { ReadinessCondition } from '../observability/readiness.js'
import { HookClient, type HookObserver, type HookTls } from '../registration/hook/client.js'

/** FAILING_FOR_MS: a hook whose last failed call is older than this no longer makes the bridge not ready. */
const FAILING_FOR_MS = 30_000

/**
 * readToken reads a bearer token file: its content without surrounding white space, one token of printable
 * ASCII. An empty or invalid file is refused (a reload keeps the token in force; at start the bridge stops).
 */
function readToken(file: string): string {
  const token = readFileSync(file, 'utf8').trim()
  if (token === '') throw new Error(`${file} is empty`)
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`${file} is not one token of printable ASCII`)
  return token
}

/**
 * loadHookTls reads the hook's CA bundle and the bridge's client certificate and key (mutual TLS), refusing a
 * bundle without a valid CA and a key that is not the certificate's.
 */
function loadHookTls(h: Config['hook'], read: ReadText): HookTls {
  const ca = h.caFile === undefined ? undefined : read(h.caFile)
  if (ca !== undefined) checkCaBundle(ca, 'hook.caFile')
  if (h.clientCertFile === undefined || h.clientKeyFile === undefined) return { ca }
  const pair = { cert: read(h.clientCertFile), key: read(h.clientKeyFile) }
  try {
    createSecureContext(pair)
  } catch (err) {
    throw new Error(`hook.clientKeyFile is not the key of hook.clientCertFile (${(err as Error).message})`)
  }
  return { ca, ...pair }
}

/**
 * wireHook makes the registration hook's client (hook.url set), its bearer token and TLS material (re-read when
 * their files change: a refused version keeps the one in force) and its readiness condition: a fail-closed hook
 * that failed `hook.unreadyAfterFailures` calls in a row, the last within 30 s, makes the bridge not ready (a load
 * balancer sends devices elsewhere; 30 s later it is tried again).
 */
export function wireHook(
  config: Config,
  deps: {
    logger: Logger
    observer?: HookObserver | undefined
    reloaded?: (file: 'hook_token' | 'hook_tls') => (ok: boolean) => void
  },
  cleanup: CleanupStack,
) {
  const h = config.hook
  if (h.url === undefined) return { hook: undefined, readiness: [] as ReadinessCondition[], watch() {} }
  const loaded = <T>(setting: string, load: () => ReloadableFile<T>): ReloadableFile<T> => {
    try {
      const file = load()
      cleanup.defer(() => file.close())
      return file
    } catch (err) {
      throw new ConfigError([`${setting}: ${(err as Error).message}`])
    }
  }
  const token = loaded(
    'hook.bearerTokenFile',
    () =>
      new ReloadableFile(h.bearerTokenFile, deps.logger, {
        what: 'hook bearer token',
        load: (file) => readToken(file),
        empty: undefined,
      }),
  )
  // one reloadable value for the CA bundle and the client pair, watched together (the pair changes together)
  const tls = loaded(
    'hook TLS material',
    () =>
      new ReloadableFile<HookTls>(h.clientCertFile ?? h.caFile, deps.logger, {
        what: 'hook TLS material',
        load: (_file, read) => loadHookTls(h, read),
        empty: {},
      }),
  )
  const client = new HookClient(
    {
      url: h.url,
      timeoutMs: h.timeoutMs,
      retries: h.retries,
      maxConcurrent: h.maxConcurrent,
      failOpen: h.failOpen,
      retryAfterSeconds: h.retryAfterSeconds,
      tls: () => tls.current,
      token: () => token.current,
    },
    deps.observer,
  )
  cleanup.defer(() => client.close())
  if (h.failOpen)
    deps.logger.warn('hook.failOpen: a registration hook that cannot be asked allows every registration')
  const n = h.unreadyAfterFailures
  const readiness: ReadinessCondition[] =
    h.failOpen || n === 0
      ? []
      : [
          {
            reason: `the registration hook failed ${n} calls in a row`,
            ok: () => !client.failing(n, FAILING_FOR_MS),
          },
        ]
  return {
    hook: client,
    readiness,
    /** watch re-reads the token file and the TLS material when they change (and on SIGHUP). */
    watch() {
      token.watch({ onChange: true, onResult: deps.reloaded?.('hook_token') })
      tls.watch({ onChange: true, onResult: deps.reloaded?.('hook_tls') })
    },
  }
}
