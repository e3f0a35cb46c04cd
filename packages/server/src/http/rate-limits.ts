import type { Logger } from 'pino'
import type { ResolvedConfig } from '../config/load.js'
import {
  type AsyncRateLimiter,
  type BucketStore,
  createSharedRateLimiter,
  memoryBuckets,
  type RateLimit,
  RateLimited,
} from '../lib/rate-limit.js'
import type { Store } from '../store/db.js'
import { postgresBuckets } from '../store/rate-limit-buckets.js'

/** The request limits Deputy enforces (issue 14 §4), by what they count per what. */
export type LimitName =
  | 'token-client'
  | 'token-address'
  | 'register'
  | 'backchannel-client'
  | 'backchannel-address'
  | 'sign-in'
  | 'connect'

/** The settings behind each limit, and the period its number counts over. */
const LIMITS: Record<
  LimitName,
  { setting: keyof ResolvedConfig; perSeconds: number; what: string }
> = {
  'token-client': {
    setting: 'tokenRateLimitPerClient',
    perSeconds: 60,
    what: 'token requests from this client',
  },
  'token-address': {
    setting: 'tokenRateLimitPerAddress',
    perSeconds: 60,
    what: 'token requests from this address',
  },
  register: {
    setting: 'registrationRateLimit',
    perSeconds: 3600,
    what: 'registrations from this address',
  },
  'backchannel-client': {
    setting: 'backchannelRateLimitPerClient',
    perSeconds: 60,
    what: 'approval requests from this client',
  },
  'backchannel-address': {
    setting: 'backchannelRateLimitPerAddress',
    perSeconds: 60,
    what: 'approval requests from this address',
  },
  'sign-in': {
    setting: 'signInRateLimit',
    perSeconds: 60,
    what: 'sign-in attempts from your network',
  },
  connect: {
    setting: 'connectRateLimit',
    perSeconds: 3600,
    what: 'account connections started by you',
  },
}

/** Where the buckets live: this process, the PostgreSQL database, or Redis. */
export type RateLimitBackend = 'memory' | 'postgres' | 'redis'

/** Deputy's rate limits, by name, over one bucket store. */
export interface RateLimits {
  readonly backend: RateLimitBackend
  /**
   * Counts one event of `limit` for `key` (a client address from `addressKey`, a client id, a
   * person's id); throws `RateLimited` (429 with `Retry-After`) past the limit. A limit set to 0
   * is off.
   */
  take(limit: LimitName, key: string): Promise<void>
  close(): Promise<void>
}

/**
 * The key of a client address for per-address limits: an IPv4 address as it is, an IPv6 address
 * as its /64 (one subscriber is usually given a whole /64, so per-address would be per-request).
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return 'unknown'
  if (!address.includes(':')) return address
  const [head = '', tail] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`
}

/**
 * Builds the limits over the buckets the deployment shares: Redis when `redisUrl` is set, the
 * PostgreSQL database when Deputy runs on one, else this process's memory (SQLite: one process).
 */
export async function createRateLimits(deps: {
  config: ResolvedConfig
  store: Pick<Store, 'db' | 'dialect'>
  logger: Logger
  /** Told of each refusal, for /metrics. */
  onRefused?: (limit: LimitName) => void
}): Promise<RateLimits> {
  const { config } = deps
  let buckets: BucketStore
  let backend: RateLimitBackend
  if (config.redisUrl) {
    // Loaded only when configured: the Redis client is most of a command's start-up otherwise.
    const { redisBuckets } = await import('../store/redis-buckets.js')
    buckets = await redisBuckets(config.redisUrl)
    backend = 'redis'
  } else if (deps.store.dialect === 'postgres') {
    buckets = postgresBuckets(deps.store.db)
    backend = 'postgres'
  } else {
    buckets = memoryBuckets()
    backend = 'memory'
  }
  // A shared store that fails is said once a minute, not per request.
  let lastWarned = 0
  const onStoreError = (err: unknown) => {
    const now = Date.now()
    if (now - lastWarned < 60_000) return
    lastWarned = now
    deps.logger.warn(
      { err, backend },
      'rate-limit store failed; counting in this process meanwhile',
    )
  }
  const limiters = new Map<LimitName, AsyncRateLimiter>()
  for (const [name, spec] of Object.entries(LIMITS) as [LimitName, (typeof LIMITS)[LimitName]][]) {
    const limit = Number(config[spec.setting])
    if (!(limit > 0)) continue
    const rate: RateLimit = { limit, perSeconds: spec.perSeconds }
    limiters.set(name, createSharedRateLimiter(buckets, rate, { name, onStoreError }))
  }
  return {
    backend,
    async take(name, key) {
      const limiter = limiters.get(name)
      if (!limiter) return
      const wait = await limiter.take(key.slice(0, 512))
      if (wait === 0) return
      deps.onRefused?.(name)
      throw new RateLimited(`too many ${LIMITS[name].what}; try again in ${wait} seconds`, wait)
    },
    close: () => buckets.close(),
  }
}
