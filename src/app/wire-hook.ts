import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { CleanupStack } from '../common/cleanup-stack.js'
import type { ConfiguredFiles } from '../config/files.js'
import { type Config, ConfigError } from '../config/load.js'
import { ReloadableFile } from '../config/reloadable-file.js'
import type { ReadinessCondition } from '../observability/readiness.js'
import { HookClient, type HookObserver } from '../registration/hook/client.js'

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
 * wireHook makes the registration hook's client (hook.url set), its bearer token (re-read when its file changes)
 * and its readiness condition: a fail-closed hook that failed `hook.unreadyAfterFailures` calls in a row, the last
 * within 30 s, makes the bridge not ready (a load balancer sends devices elsewhere; 30 s later it is tried again).
 */
export function wireHook(
  config: Config,
  files: ConfiguredFiles,
  deps: { logger: Logger; observer?: HookObserver | undefined; reloaded?: (ok: boolean) => void },
  cleanup: CleanupStack,
) {
  const h = config.hook
  if (h.url === undefined) return { hook: undefined, readiness: [] as ReadinessCondition[], watch() {} }
  let token: ReloadableFile<string | undefined>
  try {
    token = new ReloadableFile(h.bearerTokenFile, deps.logger, {
      what: 'hook bearer token',
      load: (file) => readToken(file),
      empty: undefined,
    })
  } catch (err) {
    throw new ConfigError([`hook.bearerTokenFile: ${(err as Error).message}`])
  }
  cleanup.defer(() => token.close())
  const client = new HookClient(
    {
      url: h.url,
      timeoutMs: h.timeoutMs,
      retries: h.retries,
      maxConcurrent: h.maxConcurrent,
      failOpen: h.failOpen,
      retryAfterSeconds: h.retryAfterSeconds,
      tls: {
        ...(files.hookCaPem === '' ? {} : { ca: files.hookCaPem }),
        ...(files.hookClientCertPem === ''
          ? {}
          : { cert: files.hookClientCertPem, key: files.hookClientKeyPem }),
      },
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
    /** watch re-reads the token file when it changes (and on SIGHUP). */
    watch: () => token.watch({ onChange: true, onResult: deps.reloaded }),
  }
}
