import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import { tailAudit } from '../../src/audit/query.js'
import { createRefusalLog, MAX_REFUSAL_KINDS } from '../../src/audit/refusals.js'
import { systemClock } from '../../src/lib/clock.js'
import {
  type BucketStore,
  createRateLimiter,
  createSharedRateLimiter,
  memoryBuckets,
  RATE_LIMITER_MAX_KEYS,
} from '../../src/lib/rate-limit.js'
import { createTtlCache } from '../../src/lib/ttl-cache.js'
import { createClientJwks, MAX_CACHED_SETS } from '../../src/oauth/client-jwks.js'
import { openStore } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { createSqliteDatabase } from '../helpers/databases.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'

// Issue 14 §3: what requests can put in memory stays bounded. Each in-process map keyed by
// request input (an address, a client id, a URL) is flooded with distinct keys, and its bound is
// read back through its public API: only the newest `max` keys are still remembered. (The soak,
// bench/soak, watches the whole server's memory under the same kind of traffic.)

const ONE_PER_HOUR = { limit: 1, perSeconds: 3600 }
const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

describe('bounded caches', () => {
  it('a TTL cache keeps at most maxEntries keys, the newest, whatever number of keys it is given', () => {
    const cache = createTtlCache<string, number>(60_000, 100)
    const all = keys(5_000)
    for (const [i, key] of all.entries()) cache.set(key, i)
    const kept = all.filter((key) => cache.get(key) !== undefined)
    expect(kept).toEqual(all.slice(-100))
  })

  it('a TTL cache holds 10,000 entries by default, then drops the oldest', () => {
    const cache = createTtlCache<string, number>(60_000)
    const all = keys(10_500)
    for (const [i, key] of all.entries()) cache.set(key, i)
    expect(all.filter((key) => cache.get(key) !== undefined)).toEqual(all.slice(-10_000))
  })

  /**
   * Takes each key once from a limiter allowing one event per hour, then asks again newest first:
   * a key still remembered is refused, a forgotten one starts with a full bucket.
   */
  async function remembered(take: (key: string) => number | Promise<number>, all: string[]) {
    for (const key of all) expect(await take(key)).toBe(0)
    const refused: string[] = []
    for (const key of [...all].reverse()) {
      if ((await take(key)) === 0) break
      refused.push(key)
    }
    return refused.reverse()
  }

  it(`a rate limiter remembers at most RATE_LIMITER_MAX_KEYS (${RATE_LIMITER_MAX_KEYS}) keys, the most recently seen`, async () => {
    const limiter = createRateLimiter(ONE_PER_HOUR)
    const all = keys(RATE_LIMITER_MAX_KEYS + 2_000)
    expect(await remembered((k) => limiter.take(k), all)).toEqual(all.slice(-RATE_LIMITER_MAX_KEYS))
  })

  it('a rate limiter drops the least recently used key, not the oldest inserted', () => {
    const limiter = createRateLimiter(ONE_PER_HOUR, { maxKeys: 3 })
    for (const key of ['a', 'b', 'c']) limiter.take(key)
    expect(limiter.take('a')).toBeGreaterThan(0) // a is used again: now b is the least recent
    limiter.take('d')
    expect(limiter.take('a')).toBeGreaterThan(0)
    expect(limiter.take('b')).toBe(0) // forgotten, so its bucket is full again
  })

  it("the in-memory bucket store (SQLite deployments) bounds each rate's keys", async () => {
    const store = memoryBuckets({ maxKeys: 500 })
    const limiter = createSharedRateLimiter(store, ONE_PER_HOUR, { name: 'flood', maxKeys: 500 })
    const all = keys(3_000)
    expect(await remembered((k) => limiter.take(k), all)).toEqual(all.slice(-500))
  })

  it('a limiter over a shared store (PostgreSQL, Redis) keeps unspent shares for at most maxKeys keys', async () => {
    // A shared store as the replicas see it: each round trip hands out a share of 20 tokens.
    const asked: string[] = []
    const shared: BucketStore = {
      shared: true,
      async take(key, _rate, want) {
        asked.push(key)
        return { granted: want, retryAfterSeconds: 0 }
      },
      async close() {},
    }
    const limiter = createSharedRateLimiter(
      shared,
      { limit: 1000, perSeconds: 60 },
      { name: 'flood', maxKeys: 200 },
    )
    const all = keys(2_000)
    for (const key of all) expect(await limiter.take(key)).toBe(0)
    expect(asked).toHaveLength(all.length)
    // The newest 200 keys still hold 19 unspent tokens each: no round trip. Older ones were dropped.
    for (const key of all.slice(-200)) expect(await limiter.take(key)).toBe(0)
    expect(asked).toHaveLength(all.length)
    expect(await limiter.take(all[0] as string)).toBe(0)
    expect(asked).toHaveLength(all.length + 1)
  })

  describe("client key sets by jwks_uri (private_key_jwt's keys, at URLs clients choose)", () => {
    let docs: DocumentServer
    const jwk = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }

    beforeAll(async () => {
      docs = await startDocumentServer()
      for (let i = 0; i <= MAX_CACHED_SETS; i++)
        docs.routes.set(`/jwks-${i}`, json({ keys: [jwk] }))
    })
    afterAll(() => docs?.close())

    it(`keeps at most ${MAX_CACHED_SETS} sets: the oldest is fetched again, the newest are not`, async () => {
      const jwks = createClientJwks({
        clock: { now: () => new Date('2026-01-01T00:00:00Z') },
        fetch: { allowHttpLoopback: true },
      })
      const uris = Array.from({ length: MAX_CACHED_SETS + 1 }, (_, i) => `${docs.origin}/jwks-${i}`)
      const hits = (uri: string) => docs.hits.get(new URL(uri).pathname) ?? 0
      for (const uri of uris) await jwks.keysFor(uri, 'k1')
      expect(uris.every((uri) => hits(uri) === 1)).toBe(true)
      // Newest first, so the refetch of the oldest below evicts nothing that is checked after it.
      for (const uri of [...uris].reverse().slice(0, MAX_CACHED_SETS)) await jwks.keysFor(uri, 'k1')
      expect(uris.slice(1).every((uri) => hits(uri) === 1)).toBe(true)
      await jwks.keysFor(uris[0] as string, 'k1')
      expect(hits(uris[0] as string)).toBe(2)
    })
  })

  it(`refusals of anonymous requests keep at most MAX_REFUSAL_KINDS (${MAX_REFUSAL_KINDS}) kinds a window; the rest are one count`, async () => {
    const db = await createSqliteDatabase()
    const store = openStore(db.url)
    try {
      await migrateToLatest(store)
      const refusals = createRefusalLog(createAuditLog(store, systemClock), systemClock, {
        windowSeconds: 3600,
      })
      // A refused registration's reason carries the request's input: every one is a new kind.
      const type = 'client.registration-refused'
      for (let i = 0; i < 1_000; i++) {
        await refusals.record({
          type,
          actor: { type: 'system', id: 'dynamic-registration' },
          decision: 'deny',
          reason: `invalid_redirect_uri: redirect_uris[0] https://${i}.example is refused`,
        })
      }
      await refusals.close()
      const written = await tailAudit(store, { type, limit: 5_000 })
      expect(written).toHaveLength(MAX_REFUSAL_KINDS + 1)
      expect(written.at(-1)).toMatchObject({
        actor: { type: 'system', id: 'deputy' },
        data: { count: 1_000 - MAX_REFUSAL_KINDS, distinct: true },
      })
    } finally {
      await store.close()
      await db.dispose()
    }
  })
})
