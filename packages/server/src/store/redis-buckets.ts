import { createClient } from '@redis/client'
import { type BucketStore, type RateLimit, secondsUntilOne } from '../lib/rate-limit.js'

/**
 * The token bucket as one Lua script, so a take is atomic in Redis: refill by the time since the
 * last take (Redis' own clock, so replicas agree), take a share (never more than half of what is
 * left, at least one), keep the key only until the bucket would be full again.
 */
const TAKE = `
local limit = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = limit
if b[1] then
  tokens = math.min(limit, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * perMs)
end
local granted = 0
if tokens >= 1 then
  granted = math.min(want, math.max(1, math.floor(tokens / 2)))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) / perMs) + 1000)
return { granted, tostring(tokens) }
`

/** Keys of Deputy's buckets in a Redis that may hold other things too. */
const PREFIX = 'deputy:rate:'

/**
 * Rate-limit buckets in Redis (the `redisUrl` setting), shared by every replica that names the
 * same Redis. Connects at once; a Redis that goes away later makes takes fail, and the limiter
 * falls back to per-process buckets until it is back (the client reconnects by itself).
 */
export async function redisBuckets(url: string): Promise<BucketStore> {
  let connected = false
  const client = createClient({
    url,
    // Fail a take at once while disconnected instead of queueing it behind the reconnect.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      // A Redis that cannot be reached at start is a configuration mistake, said at once; one
      // lost later is reconnected to.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(retries * 200, 2000) : cause),
    },
  })
  // An error event without a listener would crash the process; the failed take reports it.
  client.on('error', () => {})
  await client.connect()
  connected = true
  let sha: string | undefined
  return {
    shared: true,
    async take(key: string, rate: RateLimit, want: number) {
      const perMs = rate.limit / (rate.perSeconds * 1000)
      const options = {
        keys: [PREFIX + key],
        arguments: [String(rate.limit), String(perMs), String(want)],
      }
      let reply: unknown
      try {
        sha ??= await client.scriptLoad(TAKE)
        reply = await client.evalSha(sha, options)
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
        reply = await client.eval(TAKE, options)
      }
      const [granted, tokens] = reply as [number, string]
      return {
        granted: Number(granted),
        retryAfterSeconds: Number(granted) > 0 ? 0 : secondsUntilOne(rate, Number(tokens)),
      }
    },
    async close() {
      client.destroy()
    },
  }
}
