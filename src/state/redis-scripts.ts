/**
 * The Lua scripts of RedisState: each runs atomically in Redis. A lease's value is `<token> <key>`;
 * a rate-limit bucket is a hash of `tokens` (fractional) and `at` (Redis' own clock, ms), the rule of
 * src/common/token-bucket.ts.
 */

/** ACQUIRE: KEYS[1] lease; ARGV token, key, ttlMs → nil when acquired, else the value held. */
export const ACQUIRE = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return false`

/** RENEW: KEYS[1] lease; ARGV value, ttlMs → 1 when still held by this value. */
export const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

/** RELEASE: KEYS[1] lease; ARGV value → deletes it only when held by this value. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** TAKE: KEYS[1] bucket; ARGV burst, tokens per ms → 0 when a token was spent, else ms until one is there. */
export const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait`
