import { createClient } from '@redis/client'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addressKey } from '../../src/http/rate-limits.js'
import {
  type BucketStore,
  createSharedRateLimiter,
  refilled,
  secondsUntilOne,
  shareOf,
} from '../../src/lib/rate-limit.js'
import { sweepExpiredRows } from '../../src/maintenance/sweep.js'
import type { Client } from '../../src/oauth/clients.js'
import { listen, type RunningServer } from '../../src/server.js'
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { requestFrom } from '../helpers/loopback.js'

// Issue 14 §4: rate limits answer 429 with Retry-After per client and per address on /token
// (and the other anonymous endpoints), counted once for all replicas — in PostgreSQL, or in Redis
// when `redisUrl` is set — and per-address limits see the client behind a trusted proxy only.

const ADMIN = { type: 'system', id: 'test' } as const
const RESOURCE = 'http://127.0.0.1:9999/mcp'
const REDIS_URL = 'redis://127.0.0.1:6379'
const insecure = { [oauth.allowInsecureRequests]: true } as const

/** A Deputy with a resource and, unless `sameClientAs` gives one to copy, a client_credentials agent. */
async function agentDeputy(
  config: Record<string, unknown>,
  database?: TestDatabase,
  sameClientAs?: { deputy: TestDeputy; agent: Client },
): Promise<{ deputy: TestDeputy; agent: Client; secret: string }> {
  const deputy = await startTestDeputy({ ...(database && { database }), config })
  const { deps } = deputy
  if (!(await deps.resources.get(RESOURCE)))
    await deps.resources.put(
      { uri: RESOURCE, name: 'Shop', scopes: { 'tools:read': 'Read' }, isDefault: true },
      ADMIN,
    )
  if (sameClientAs) {
    const { agent } = sameClientAs
    // Another database (Redis case): the same client row, secret digest and all.
    if (!(await deps.clients.get(agent.clientId))) {
      const row = await sameClientAs.deputy.deps.db
        .selectFrom('clients')
        .selectAll()
        .where('client_id', '=', agent.clientId)
        .executeTakeFirstOrThrow()
      await deps.db.insertInto('clients').values(row).execute()
    }
    return { deputy, agent, secret: '' }
  }
  const created = await deps.clients.register(
    { name: 'Agent', allowedScopes: ['tools:read'] },
    ADMIN,
  )
  return { deputy, agent: created.client, secret: created.clientSecret as string }
}

/** A client_credentials request as an independent client (oauth4webapi) sends it. */
async function tokenRequest(
  origin: string,
  clientId: string,
  secret: string,
  fetchFrom?: string,
): Promise<Response> {
  const as: oauth.AuthorizationServer = {
    issuer: 'http://localhost:8080',
    token_endpoint: `${origin}/token`,
  }
  return oauth.clientCredentialsGrantRequest(
    as,
    { client_id: clientId },
    oauth.ClientSecretBasic(secret),
    { scope: 'tools:read', resource: RESOURCE },
    {
      ...insecure,
      ...(fetchFrom && {
        [oauth.customFetch]: (url: string, init: RequestInit) =>
          requestFrom(fetchFrom, url, {
            method: init.method ?? 'POST',
            headers: headerRecord(init.headers),
            body: String(init.body),
          }),
      }),
    },
  )
}

/** The same request straight into a Deputy's app (no socket: the client address is unknown). */
function inProcessToken(deputy: TestDeputy, clientId: string, secret: string) {
  return deputy.app.request('/token', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'tools:read' }).toString(),
  })
}

describe('rate limits on one Deputy (SQLite: counted in the process)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let agent: Client
  let secret: string

  beforeAll(async () => {
    ;({ deputy, agent, secret } = await agentDeputy({
      tokenRateLimitPerClient: 3,
      tokenRateLimitPerAddress: 5,
      backchannelRateLimitPerAddress: 2,
      trustedProxies: ['127.0.0.5'],
    }))
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await server.shutdown()
    await deputy.database.dispose()
  })

  it('RFC 6585 §4: past the per-client limit /token answers 429 with Retry-After, which oauth4webapi reads as temporarily_unavailable', async () => {
    const as = { issuer: 'http://localhost:8080', token_endpoint: `${server.url}/token` }
    for (let i = 0; i < 3; i++) {
      const ok = await tokenRequest(server.url, agent.clientId, secret, '127.0.0.2')
      const tokens = await oauth.processClientCredentialsResponse(
        as,
        { client_id: agent.clientId },
        ok,
      )
      expect(tokens.access_token).toBeTruthy()
    }
    // From another address: the limit is the client's, wherever it asks from.
    const refused = await tokenRequest(server.url, agent.clientId, secret, '127.0.0.3')
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(refused.headers.get('cache-control')).toBe('no-store')
    await expect(
      oauth.processClientCredentialsResponse(as, { client_id: agent.clientId }, refused),
    ).rejects.toMatchObject({ error: 'temporarily_unavailable', status: 429 })

    const metrics = await deputy.app.request('/metrics')
    expect(metrics.status).toBe(401)
    const text = await (await deputy.deps.metrics.render()).body
    expect(text).toMatch(/deputy_rate_limited_total\{limit="token-client"\} 1/)
    expect(text).toMatch(/deputy_refusals_total\{type="token.refused",reason="rate-limited"\} 1/)
  })

  it('a client that only names the agent cannot spend its limit: a wrong secret is refused 400/401, not counted against it', async () => {
    const other = await deputy.deps.clients.register(
      { name: 'Second agent', allowedScopes: ['tools:read'] },
      ADMIN,
    )
    for (let i = 0; i < 3; i++) {
      const wrong = await tokenRequest(server.url, other.client.clientId, 'wrong', '127.0.0.4')
      expect(wrong.status).toBe(401)
    }
    const ok = await tokenRequest(
      server.url,
      other.client.clientId,
      other.clientSecret as string,
      '127.0.0.4',
    )
    expect(ok.status).toBe(200)
  })

  it('per address: past the limit every request from that address is 429, before its client is even read; another address is not held back', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 6; i++)
      statuses.push((await tokenRequest(server.url, 'nobody', 'x', '127.0.0.6')).status)
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429])
    expect((await tokenRequest(server.url, 'nobody', 'x', '127.0.0.7')).status).toBe(401)
  })

  it('X-Forwarded-For is believed from a trusted proxy only: each client behind it has its own bucket, a made-up header from anyone else changes nothing', async () => {
    const behindProxy = (client: string) =>
      requestFrom('127.0.0.5', `${server.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': `203.0.113.9, ${client}`,
        },
        body: 'grant_type=client_credentials&client_id=nobody',
      })
    const first: number[] = []
    for (let i = 0; i < 6; i++) first.push((await behindProxy('198.51.100.1')).status)
    expect(first).toEqual([400, 400, 400, 400, 400, 429])
    // Another client behind the same proxy (the right-most untrusted hop) still gets through.
    expect((await behindProxy('198.51.100.2')).status).toBe(400)

    // Not from the proxy: the header is ignored, so a fresh made-up address per request does not
    // give a fresh bucket.
    const direct: number[] = []
    for (let i = 0; i < 6; i++)
      direct.push(
        (
          await requestFrom('127.0.0.8', `${server.url}/token`, {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'x-forwarded-for': `198.51.100.${10 + i}`,
            },
            body: 'grant_type=client_credentials&client_id=nobody',
          })
        ).status,
      )
    expect(direct).toEqual([400, 400, 400, 400, 400, 429])
  })

  it('the backchannel endpoint (CIBA §7) is limited per address the same way, before the client is read', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++)
      statuses.push(
        (
          await requestFrom('127.0.0.13', `${server.url}/bc-authorize`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'scope=openid&login_hint=alice%40example.com&client_id=nobody',
          })
        ).status,
      )
    expect(statuses).toEqual([400, 400, 429])
  })

  it('an IPv6 client is counted by its /64, so rotating the interface id does not escape the limit', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1')
    expect(addressKey(undefined)).toBe('unknown')
  })
})

describe.skipIf(!POSTGRES_URL)(
  'a limit shared by two Deputy replicas on one PostgreSQL (skipped without DEPUTY_TEST_POSTGRES_URL)',
  () => {
    let database: TestDatabase
    let a: TestDeputy
    let b: TestDeputy
    let agent: Client
    let secret: string

    beforeAll(async () => {
      database = await createPostgresDatabase()
      const config = { tokenRateLimitPerClient: 4 }
      ;({ deputy: a, agent, secret } = await agentDeputy(config, database))
      ;({ deputy: b } = await agentDeputy(
        // The second replica: the same database, so the same master key.
        { ...config, masterKey: a.config.masterKey },
        database,
        { deputy: a, agent },
      ))
    })
    afterAll(async () => {
      await a?.close()
      await b?.close()
      await database?.dispose()
    })

    it('four tokens in all, wherever they are asked for; the fifth is refused on both replicas', async () => {
      const statuses = [
        (await inProcessToken(a, agent.clientId, secret)).status,
        (await inProcessToken(b, agent.clientId, secret)).status,
        (await inProcessToken(a, agent.clientId, secret)).status,
        (await inProcessToken(b, agent.clientId, secret)).status,
      ]
      expect(statuses).toEqual([200, 200, 200, 200])
      const onA = await inProcessToken(a, agent.clientId, secret)
      const onB = await inProcessToken(b, agent.clientId, secret)
      expect([onA.status, onB.status]).toEqual([429, 429])
      expect(Number(onB.headers.get('retry-after'))).toBeGreaterThan(0)
      // One row per limit and key, in the database both share.
      const rows = await a.deps.db
        .selectFrom('rate_limit_buckets')
        .select('key')
        .where('key', 'like', 'token-client:%')
        .execute()
      expect(rows.map((r) => r.key)).toEqual([`token-client:${agent.clientId}`])
      // Once full again a bucket means nothing, and the sweep deletes it.
      const later = { now: () => new Date(Date.now() + 5 * 60_000) }
      const swept = await sweepExpiredRows({ ...a.deps, clock: later })
      expect(swept.rateLimitBuckets).toBeGreaterThanOrEqual(1)
      expect(await a.deps.db.selectFrom('rate_limit_buckets').select('key').execute()).toEqual([])
    })
  },
)

/** True when a Redis answers at REDIS_URL. */
async function redisAnswers(): Promise<boolean> {
  const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return true
  } catch {
    return false
  } finally {
    if (client.isOpen) client.destroy()
  }
}

const redisUp = await redisAnswers()

describe.skipIf(!redisUp)(
  `a limit shared through Redis by two Deputy processes with their own databases (skipped when no Redis answers at ${REDIS_URL})`,
  () => {
    let a: TestDeputy
    let b: TestDeputy
    let agent: Client
    let secret: string

    beforeAll(async () => {
      // The client id is random, so buckets of earlier runs in the same Redis do not count.
      const config = { tokenRateLimitPerClient: 3, redisUrl: REDIS_URL }
      ;({ deputy: a, agent, secret } = await agentDeputy(config))
      ;({ deputy: b } = await agentDeputy(config, undefined, { deputy: a, agent }))
    })
    afterAll(async () => {
      await a?.dispose()
      await b?.dispose()
    })

    it('three tokens in all across both; then 429 with Retry-After on each', async () => {
      expect(a.deps.rateLimits.backend).toBe('redis')
      const statuses = [
        (await inProcessToken(a, agent.clientId, secret)).status,
        (await inProcessToken(b, agent.clientId, secret)).status,
        (await inProcessToken(b, agent.clientId, secret)).status,
      ]
      expect(statuses).toEqual([200, 200, 200])
      const onA = await inProcessToken(a, agent.clientId, secret)
      expect(onA.status).toBe(429)
      expect(Number(onA.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await inProcessToken(b, agent.clientId, secret)).status).toBe(429)
    })
  },
)

describe('a Redis that cannot be reached', () => {
  it('is a one-line configuration error at start, not a Deputy that silently counts nothing', async () => {
    await expect(startTestDeputy({ config: { redisUrl: 'redis://127.0.0.1:1' } })).rejects.toThrow(
      /cannot reach the Redis of redisUrl/,
    )
  })
})

function headerRecord(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  new Headers(headers).forEach((value, name) => {
    out[name] = value
  })
  return out
}

describe('the shared limiter takes shares, so the shared store is not asked for every request', () => {
  it('far below the limit one round trip per share; the limit still holds exactly once the shares are spent', async () => {
    // A shared store with the same arithmetic as PostgreSQL's and Redis' (one bucket), counting
    // its round trips; the period is so long that nothing refills while the test runs.
    let trips = 0
    const bucket = { tokens: 500, at: performance.now() }
    const store: BucketStore = {
      shared: true,
      async take(_key, rate, want) {
        trips++
        const now = performance.now()
        const available = refilled(rate, bucket.tokens, now - bucket.at)
        const granted = shareOf(available, want)
        Object.assign(bucket, { tokens: available - granted, at: now })
        return { granted, retryAfterSeconds: granted ? 0 : secondsUntilOne(rate, available) }
      },
      async close() {},
    }
    const limiter = createSharedRateLimiter(store, { limit: 500, perSeconds: 1e9 }, { name: 't' })
    for (let i = 0; i < 100; i++) expect(await limiter.take('k')).toBe(0)
    // 500 / 50 = shares of 10: ten round trips for a hundred requests.
    expect(trips).toBe(10)
    let admitted = 100
    while ((await limiter.take('k')) === 0) admitted++
    expect(admitted).toBe(500)
  })

  it('a burst of concurrent requests for one key shares round trips and is refused only past the limit', async () => {
    // Each concurrent take asking on its own would drain a share apiece (200 × 10 of 500).
    let trips = 0
    let tokens = 500
    const store: BucketStore = {
      shared: true,
      async take(_key, _rate, want) {
        trips++
        await new Promise((resolve) => setImmediate(resolve))
        const granted = shareOf(tokens, want)
        tokens -= granted
        return { granted, retryAfterSeconds: granted ? 0 : 60 }
      },
      async close() {},
    }
    const limiter = createSharedRateLimiter(store, { limit: 500, perSeconds: 1e9 }, { name: 't' })
    const burst = await Promise.all(Array.from({ length: 200 }, () => limiter.take('k')))
    expect(burst.filter((wait) => wait !== 0)).toEqual([])
    expect(trips).toBeLessThan(200)
    const rest = await Promise.all(Array.from({ length: 400 }, () => limiter.take('k')))
    expect(rest.filter((wait) => wait === 0)).toHaveLength(300)
  })

  it('a request the store granted a token to goes ahead, even when others spent the shares first', async () => {
    // Shares of one token (limit 50), and a store that answers every round trip under way at
    // once (as a driver reading several answers off one socket read does): a burst's last takes
    // ask for their own token while a later burst's shared round trip comes back beside theirs.
    // All 45 are within the limit, so none may be refused, and the store hands out exactly 45.
    let tokens = 50
    let waiting: (() => void)[] = []
    const store: BucketStore = {
      shared: true,
      take(_key, _rate, want) {
        return new Promise((resolve) => {
          if (waiting.length === 0)
            setTimeout(() => {
              const answers = waiting
              waiting = []
              for (const answer of answers) answer()
            }, 1)
          waiting.push(() => {
            const granted = shareOf(tokens, want)
            tokens -= granted
            resolve({ granted, retryAfterSeconds: granted ? 0 : 60 })
          })
        })
      },
      async close() {},
    }
    const limiter = createSharedRateLimiter(store, { limit: 50, perSeconds: 1e9 }, { name: 't' })
    const first = Array.from({ length: 30 }, () => limiter.take('k'))
    await new Promise((resolve) => setTimeout(resolve, 8))
    const second = Array.from({ length: 15 }, () => limiter.take('k'))
    const waits = await Promise.all([...first, ...second])
    expect(waits.filter((wait) => wait !== 0)).toEqual([])
    expect(50 - tokens).toBe(45)
  })
})
