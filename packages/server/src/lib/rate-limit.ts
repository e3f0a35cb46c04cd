import { DeputyError } from './errors.js'

/** A limit of `limit` events per `perSeconds`, allowing a burst of `limit` at once. */
export interface RateLimit {
  limit: number
  perSeconds: number
}

/** Takes one event for a key: 0 when it may go ahead, else the seconds until it may. */
export interface RateLimiter {
  take(key: string): number
}

/** Most keys a limiter remembers; the least recently seen key is forgotten first. */
export const RATE_LIMITER_MAX_KEYS = 10_000

/**
 * A token bucket per key (a client address), in this process's memory: each key holds up to
 * `limit` tokens, refilled at `limit / perSeconds` a second, and each event takes one. Memory is
 * bounded: past `maxKeys` the least recently used key is dropped (it starts full again when it
 * comes back, the price of the bound). Replicas each keep their own buckets, so N replicas let
 * through up to N times the limit. Time is the monotonic `performance.now()`: limits are about
 * real elapsed time, whatever a test clock says.
 */
export function createRateLimiter(
  rate: RateLimit,
  options: { maxKeys?: number; now?: () => number } = {},
): RateLimiter {
  const maxKeys = options.maxKeys ?? RATE_LIMITER_MAX_KEYS
  const now = options.now ?? (() => performance.now())
  const perMs = rate.limit / (rate.perSeconds * 1000)
  // A Map iterates in insertion order; re-inserting on each use keeps it in LRU order.
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(key) {
      const t = now()
      const bucket = buckets.get(key)
      let tokens = rate.limit
      if (bucket) {
        buckets.delete(key)
        tokens = Math.min(rate.limit, bucket.tokens + (t - bucket.at) * perMs)
      } else if (buckets.size >= maxKeys) {
        const oldest = buckets.keys().next()
        if (!oldest.done) buckets.delete(oldest.value)
      }
      if (tokens >= 1) {
        buckets.set(key, { tokens: tokens - 1, at: t })
        return 0
      }
      buckets.set(key, { tokens, at: t })
      return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000))
    },
  }
}

/** A request refused by a rate limit; answered 429 with `Retry-After: retryAfterSeconds`. */
export class RateLimited extends DeputyError {
  readonly retryAfterSeconds: number

  constructor(message: string, retryAfterSeconds: number) {
    super('ERR_RATE_LIMITED', message)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** True for a RateLimited error. */
export function isRateLimited(err: unknown): err is RateLimited {
  return err instanceof RateLimited
}
