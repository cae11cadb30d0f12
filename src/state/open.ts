import type { Config } from '../config/load.js'
import { MemoryState } from './memory.js'
import { RedisState } from './redis.js'
import type { SharedState } from './shared-state.js'

/** openSharedState opens the configured shared state: Redis with state.redis.url, else this process's memory. */
export async function openSharedState(config: Config): Promise<SharedState> {
  const { url, keyPrefix, commandTimeoutMs } = config.state.redis
  if (url === undefined) return new MemoryState()
  return RedisState.connect({ url, keyPrefix, commandTimeoutMs })
}
