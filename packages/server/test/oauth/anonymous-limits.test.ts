import { afterEach, describe, expect, it } from 'vitest'
import { verifyAuditChain } from '../../src/audit/verify.js'
import type { ConfigInput } from '../../src/config/schema.js'
import { listen, type RunningServer } from '../../src/server.js'
import { openStore } from '../../src/store/db.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { documentServer, requestFrom } from '../helpers/loopback.js'
import { browser } from '../helpers/sign-in.js'
import { createWorld, RESOURCE } from './token-helpers.js'

// Anonymous endpoints cannot be used to fill the database: registrations and metadata fetches
// are rate-limited per client address, a broken metadata URL is remembered, and refusals are
// summarised instead of each writing a record.

const REDIRECT = 'http://127.0.0.1:3000/callback'
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
/** What these tests count is the refusal records of floods, not the request limits (http/rate-limits.test.ts). */
const NO_TOKEN_RATE_LIMIT = { tokenRateLimitPerAddress: 0 } as const

/** Runs `count` calls of `send`, `parallel` at a time. */
async function flood(
  count: number,
  parallel: number,
  send: (i: number) => Response | Promise<Response>,
) {
  const statuses: number[] = []
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, async (_, j) => send(i + j))
    for (const r of await Promise.all(batch)) {
      statuses.push(r.status)
      await r.body?.cancel()
    }
  }
  return statuses
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`anonymous endpoints on ${dialect.name}`, () => {
    let deputy: TestDeputy | undefined
    let server: RunningServer | undefined
    let docs: Awaited<ReturnType<typeof documentServer>> | undefined
    let database: TestDatabase
    let stopped = false

    async function start(config: ConfigInput = {}): Promise<TestDeputy> {
      database = await dialect.create()
      stopped = false
      deputy = await startTestDeputy({
        database,
        // One window for the whole test, so what is summarised when does not depend on speed.
        config: { auditRefusalSummarySeconds: 3600, ...config },
      })
      return deputy
    }

    /** Shuts Deputy down the way a process does (server first, if there is one). */
    async function stop(): Promise<void> {
      if (stopped) return
      stopped = true
      if (server) await server.shutdown()
      else await deputy?.close()
    }

    afterEach(async () => {
      await stop()
      await database?.dispose()
      await docs?.close()
      server = undefined
      deputy = undefined
      docs = undefined
    })

    /** Every audit record of a type, read from the database after Deputy has shut down. */
    async function recordsAfterShutdown(type: string) {
      await stop()
      const store = openStore(database.url)
      try {
        const rows = await store.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', type)
          .orderBy('seq')
          .execute()
        expect((await verifyAuditChain(store)).ok).toBe(true)
        return rows.map((r) => ({
          ...r,
          actor: JSON.parse(r.actor) as { id: string },
          data: JSON.parse(r.data) as Record<string, unknown>,
        }))
      } finally {
        await store.close()
      }
    }

    async function count(type: string): Promise<number> {
      const row = await (deputy as TestDeputy).deps.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('type', '=', type)
        .executeTakeFirstOrThrow()
      return Number(row.n)
    }

    it('1,000 identical refused token requests write one record, and one summary with their count at shutdown', async () => {
      const d = await start(NO_TOKEN_RATE_LIMIT)
      const statuses = await flood(1000, 50, () =>
        d.app.request('http://localhost:8080/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials&client_id=nobody',
        }),
      )
      expect(new Set(statuses)).toEqual(new Set([400]))
      expect(await count('token.refused')).toBe(1)
      const records = await recordsAfterShutdown('token.refused')
      expect(records).toHaveLength(2)
      expect(records[0]?.reason).toBe('unknown-or-disabled-client')
      expect(records[1]).toMatchObject({
        reason: 'unknown-or-disabled-client',
        decision: 'deny',
        actor: records[0]?.actor,
        data: { count: 999, window: { seconds: 3600 } },
      })
    })

    it('distinct refusals are each written in full', async () => {
      const d = await start()
      for (const clientId of ['a', 'b', 'c', 'a', 'b']) {
        await d.app.request('http://localhost:8080/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=client_credentials&client_id=${clientId}`,
        })
      }
      const records = await recordsAfterShutdown('token.refused')
      const full = records.filter((r) => r.data.count === undefined)
      expect(full.map((r) => r.actor.id)).toEqual(['a', 'b', 'c'])
      expect(records.filter((r) => r.data.count === 1)).toHaveLength(2)
    })

    it('a flood of refusals that differ in every request writes a bounded number of records', async () => {
      const d = await start(NO_TOKEN_RATE_LIMIT)
      await flood(1000, 50, (i) =>
        d.app.request('http://localhost:8080/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=client_credentials&client_id=attacker-${i}`,
        }),
      )
      const records = await recordsAfterShutdown('token.refused')
      expect(records.length).toBeLessThan(300)
      const counted = records.reduce(
        (sum, r) => sum + (typeof r.data.count === 'number' ? r.data.count : 1),
        0,
      )
      expect(counted).toBe(1000)
    })

    it('refusals at /authorize, /register and sign-in with unknown accounts are summarised the same way', async () => {
      const d = await start({ registrationRateLimit: 10_000, signInRateLimit: 0 })
      const authorize = await flood(300, 50, () =>
        d.app.request(
          `http://localhost:8080/authorize?response_type=code&client_id=ghost&redirect_uri=${encodeURIComponent(REDIRECT)}`,
        ),
      )
      expect(new Set(authorize)).toEqual(new Set([400]))
      const register = await flood(300, 50, () =>
        d.app.request('http://localhost:8080/register', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'Spam', redirect_uris: [] }),
        }),
      )
      expect(new Set(register)).toEqual(new Set([400]))
      const b = browser(d)
      const csrf = await b.openLogin()
      for (let i = 0; i < 60; i++) {
        await b.post('/login', { csrf_token: csrf, email: 'nobody@example.com', password: 'guess' })
      }
      expect(await count('authorization.refused')).toBe(1)
      expect(await count('client.registration-refused')).toBe(1)
      // One in full per reason: the unknown account, and the throttle refusing further guesses.
      expect(await count('login.failed')).toBe(2)
    })

    it('a broken metadata document URL is fetched once for many requests and writes one refusal', async () => {
      docs = await documentServer(() => ({ status: 500, body: '{}' }))
      const d = await start({ dangerouslyAllowHttpLoopbackClientMetadata: true })
      const clientId = `${docs.origin}/agents/broken/client.json`
      const authorize = await flood(100, 20, () =>
        d.app.request(
          `http://localhost:8080/authorize?${new URLSearchParams({
            response_type: 'code',
            client_id: clientId,
            redirect_uri: REDIRECT,
            code_challenge: CHALLENGE,
            code_challenge_method: 'S256',
          })}`,
        ),
      )
      expect(new Set(authorize)).toEqual(new Set([400]))
      const token = await flood(100, 20, () =>
        d.app.request('http://localhost:8080/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: 'x',
            client_id: clientId,
          }).toString(),
        }),
      )
      expect(new Set(token)).toEqual(new Set([400]))
      expect(docs.total()).toBe(1)
      expect(await count('client-metadata.refused')).toBe(1)
      const rows = await d.deps.db.selectFrom('clients').select('client_id').execute()
      expect(rows).toEqual([])
    })

    it('/register answers 429 with Retry-After past the per-address limit and writes no client beyond it', async () => {
      const d = await start({ registrationRateLimit: 5 })
      server = await listen(d, { port: 0, host: '127.0.0.1' })
      const registerFrom = (from: string) =>
        requestFrom(from, `${server?.url}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'Spam', redirect_uris: [REDIRECT] }),
        })
      const answers: Response[] = []
      for (let i = 0; i < 20; i++) answers.push(await registerFrom('127.0.0.2'))
      expect(answers.map((r) => r.status)).toEqual([...Array(5).fill(201), ...Array(15).fill(429)])
      const limited = answers[5] as Response
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(limited.headers.get('content-type')).toMatch(/^application\/json/)
      expect(((await limited.json()) as { error: string }).error).toBe('temporarily_unavailable')
      // Another address is not held back by the first one.
      expect((await registerFrom('127.0.0.3')).status).toBe(201)
      const rows = await d.deps.db.selectFrom('clients').select('client_id').execute()
      expect(rows).toHaveLength(6)
    })

    it('/authorize stores at most authorizationRequestRateLimit sign-in hand-offs per address; past it a 429 page and no new row', async () => {
      const world = await createWorld({
        database: await dialect.create(),
        config: { authorizationRequestRateLimit: 5 },
      })
      try {
        const statuses = await flood(12, 1, () =>
          world.deputy.app.request(
            `http://localhost:8080/authorize?${new URLSearchParams({
              response_type: 'code',
              client_id: world.app.clientId,
              redirect_uri: REDIRECT,
              code_challenge: CHALLENGE,
              code_challenge_method: 'S256',
              resource: RESOURCE,
            })}`,
          ),
        )
        expect(statuses).toEqual([...Array(5).fill(303), ...Array(7).fill(429)])
        const rows = await world.deputy.deps.db
          .selectFrom('authorization_requests')
          .select('id_hash')
          .execute()
        expect(rows).toHaveLength(5)
      } finally {
        await world.deputy.dispose()
      }
    })

    it('metadata document fetches are limited per address: past the limit /token and /authorize answer 429', async () => {
      docs = await documentServer(() => ({ status: 404, body: '{}' }))
      const d = await start({
        dangerouslyAllowHttpLoopbackClientMetadata: true,
        clientMetadataFetchRateLimit: 3,
      })
      server = await listen(d, { port: 0, host: '127.0.0.1' })
      const origin = server.url
      const tokenFrom = (from: string, n: number) =>
        requestFrom(from, `${origin}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: 'x',
            client_id: `${docs?.origin}/agents/${n}/client.json`,
          }).toString(),
        })
      const statuses: number[] = []
      for (let n = 0; n < 3; n++) statuses.push((await tokenFrom('127.0.0.2', n)).status)
      expect(statuses).toEqual([400, 400, 400])
      const limited = await tokenFrom('127.0.0.2', 3)
      expect(limited.status).toBe(429)
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(((await limited.json()) as { error: string }).error).toBe('temporarily_unavailable')
      const page = await requestFrom(
        '127.0.0.2',
        `${origin}/authorize?${new URLSearchParams({
          response_type: 'code',
          client_id: `${docs.origin}/agents/99/client.json`,
          redirect_uri: REDIRECT,
        })}`,
      )
      expect(page.status).toBe(429)
      expect(page.headers.get('retry-after')).not.toBeNull()
      expect(await page.text()).toContain('Too many requests')
      expect(docs.total()).toBe(3)
      // A document already fetched costs nothing, and another address still gets its fetches.
      expect((await tokenFrom('127.0.0.2', 0)).status).toBe(400)
      expect((await tokenFrom('127.0.0.3', 4)).status).toBe(400)
      expect(docs.total()).toBe(4)
    })
  })
}
