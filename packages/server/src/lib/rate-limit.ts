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

/** The token-bucket arithmetic every backend shares: `tokens` refilled since `at`, capped. */
export function refilled(rate: RateLimit, tokens: number, elapsedMs: number): number {
  return Math.min(
    rate.limit,
    tokens + Math.max(0, elapsedMs) * (rate.limit / (rate.perSeconds * 1000)),
  )
}

/**
 * How many tokens a backend hands out for one ask of up to `want`: never more than half of what
 * the bucket holds (at least one), so as a key nears its limit the shares replicas hold shrink
 * to one and no replica sits on tokens another needs.
 */
export function shareOf(available: number, want: number): number {
  if (available < 1) return 0
  return Math.min(want, Math.max(1, Math.floor(available / 2)))
}

/** Seconds until a bucket holding `tokens` holds one again. */
export function secondsUntilOne(rate: RateLimit, tokens: number): number {
  const perMs = rate.limit / (rate.perSeconds * 1000)
  return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000))
}

/**
 * Where buckets live: this process's memory, or a store every replica shares (PostgreSQL,
 * Redis). `take` asks for up to `want` tokens of `key`'s bucket at once and answers how many it
 * got (see `shareOf`) or, with none, how long until one.
 */
export interface BucketStore {
  readonly shared: boolean
  take(
    key: string,
    rate: RateLimit,
    want: number,
  ): Promise<{ granted: number; retryAfterSeconds: number }>
  close(): Promise<void>
}

/** A limiter whose buckets may live elsewhere: 0 when the event may go ahead, else seconds to wait. */
export interface AsyncRateLimiter {
  take(key: string): Promise<number>
}

/**
 * Buckets in this process's memory (SQLite deployments, tests): nothing shared, so nothing to
 * save by taking shares — each take gets one token, from `createRateLimiter`'s buckets (one set
 * per rate, each bounded by `maxKeys`).
 */
export function memoryBuckets(options: { maxKeys?: number } = {}): BucketStore {
  const limiters = new Map<string, RateLimiter>()
  return {
    shared: false,
    async take(key, rate) {
      const id = `${rate.limit}/${rate.perSeconds}`
      let limiter = limiters.get(id)
      if (!limiter) {
        limiter = createRateLimiter(rate, options)
        limiters.set(id, limiter)
      }
      const wait = limiter.take(key)
      return { granted: wait === 0 ? 1 : 0, retryAfterSeconds: wait }
    },
    async close() {},
  }
}

/** Fewest and most tokens a replica takes from a shared bucket in one round trip. */
const SHARE_FRACTION = 50
const MAX_SHARE = 1000

/**
 * A limiter over a `BucketStore`. With a shared store each take would be a round trip, which on
 * the token endpoint costs more than the token; so a replica takes a share of a key's bucket at
 * once (up to 1/50 of the limit, never more than half of what is left) and spends it locally,
 * asking again only when it is used up. Far below the limit that is one round trip per share;
 * near it shares shrink to one token and every take asks the store. The price, stated in
 * docs/deploy.md: a replica holding unspent tokens of a key can let them through after the
 * bucket refilled (at most one share per replica above the limit), and another replica may be
 * refused while they sit unspent (at most one share per other replica early). When the shared
 * store fails, the limiter falls back to this process's own buckets (limits still hold per
 * replica) and says so through `onStoreError`.
 */
export function createSharedRateLimiter(
  store: BucketStore,
  rate: RateLimit,
  options: { name: string; maxKeys?: number; onStoreError?: (err: unknown) => void },
): AsyncRateLimiter {
  if (!store.shared) {
    // Nothing shared (this process's memory): a take is one local bucket operation, which shares,
    // the held map and the round-trip bookkeeping below would only make dearer (the token
    // endpoint takes twice per token).
    return {
      async take(key) {
        return (await store.take(`${options.name}:${key}`, rate, 1)).retryAfterSeconds
      },
    }
  }
  const maxKeys = options.maxKeys ?? RATE_LIMITER_MAX_KEYS
  const share = Math.min(MAX_SHARE, Math.max(1, Math.floor(rate.limit / SHARE_FRACTION)))
  const held = new Map<string, number>()
  const fallback = createRateLimiter(rate, { maxKeys })
  /** Per key, the store round trip under way: concurrent takes wait for it, not ask again. */
  const asking = new Map<string, Promise<ShareOutcome>>()

  const spend = (key: string): boolean => {
    const spare = held.get(key) ?? 0
    if (spare <= 0) return false
    if (spare === 1) held.delete(key)
    else held.set(key, spare - 1)
    return true
  }
  /** Asks the store for `tokens`; what it grants is held here for later takes when `hold`. */
  const ask = async (key: string, tokens: number, hold = true): Promise<ShareOutcome> => {
    let answer: { granted: number; retryAfterSeconds: number }
    try {
      answer = await store.take(`${options.name}:${key}`, rate, tokens)
    } catch (err) {
      options.onStoreError?.(err)
      return { failed: true }
    }
    if (answer.granted > 0 && hold) {
      const before = held.get(key) ?? 0
      if (before === 0 && held.size >= maxKeys) {
        const oldest = held.keys().next()
        if (!oldest.done) held.delete(oldest.value)
      }
      held.set(key, before + answer.granted)
    }
    return { failed: false, ...answer }
  }

  return {
    async take(key) {
      // A burst of takes of one key shares one round trip: each asking on its own would take a
      // share apiece, draining the bucket by up to `share` tokens per request and refusing
      // requests while the tokens they drained sat unspent here.
      for (let round = 0; round < 3; round++) {
        if (spend(key)) return 0
        let pending = asking.get(key)
        if (!pending) {
          pending = ask(key, share).finally(() => asking.delete(key))
          asking.set(key, pending)
        }
        const outcome = await pending
        if (outcome.failed) return fallback.take(key)
        if (outcome.granted === 0) return outcome.retryAfterSeconds
      }
      // Others spent three shares first: ask for this one request's token alone, and spend it
      // here. Held with the shares, another take resuming first could spend it, and this request
      // would be refused a token the store granted it.
      if (spend(key)) return 0
      const outcome = await ask(key, 1, false)
      if (outcome.failed) return fallback.take(key)
      return outcome.granted > 0 ? 0 : outcome.retryAfterSeconds
    },
  }
}

/** What one round trip to the bucket store came back with. */
type ShareOutcome = { failed: true } | { failed: false; granted: number; retryAfterSeconds: number }

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
  // A Map iterates in insertion order; re-inserting on each use keeps it in LRU order.
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(key) {
      const t = now()
      const bucket = buckets.get(key)
      let tokens = rate.limit
      if (bucket) {
        buckets.delete(key)
        tokens = refilled(rate, bucket.tokens, t - bucket.at)
      } else if (buckets.size >= maxKeys) {
        const oldest = buckets.keys().next()
        if (!oldest.done) buckets.delete(oldest.value)
      }
      if (tokens >= 1) {
        buckets.set(key, { tokens: tokens - 1, at: t })
        return 0
      }
      buckets.set(key, { tokens, at: t })
      return secondsUntilOne(rate, tokens)
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
