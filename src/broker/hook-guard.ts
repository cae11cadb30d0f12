import type { Client } from 'aedes'
import type { Logger } from 'pino'

/**
 * endConnection is the last resort for an unexpected error in one connection's hooks: that connection ends,
 * the error is logged, and nothing escapes to the process, so the bridge keeps serving everyone else.
 */
export function endConnection(client: Client | null, hook: string, err: unknown, logger: Logger): void {
  logger.error({ hook, clientId: client?.id, err }, 'unexpected error in a connection; closing it')
  try {
    client?.conn?.destroy()
  } catch {
    // the connection is already gone
  }
}

type Done = (...args: never[]) => void

/**
 * guardHook wraps an Aedes hook whose last argument is its callback: a throw ends that connection and
 * answers the callback with the error, once; the hook's own answer is passed through otherwise.
 */
export function guardHook<C extends Client | null, A extends unknown[], D extends Done>(
  name: string,
  hook: (client: C, ...rest: [...A, D]) => void,
  logger: Logger,
): (client: C, ...rest: [...A, D]) => void {
  return (client, ...rest) => {
    const done = rest[rest.length - 1] as unknown as (...args: unknown[]) => void
    let answered = false
    const once = (...args: unknown[]): void => {
      if (answered) return
      answered = true
      done(...args)
    }
    try {
      hook(client, ...([...rest.slice(0, -1), once] as unknown as [...A, D]))
    } catch (err) {
      endConnection(client, name, err, logger)
      once(err instanceof Error ? err : new Error(String(err)), null)
    }
  }
}
