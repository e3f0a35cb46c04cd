import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startSession } from '../../src/identity/sessions.js'
import { sweepExpiredRows } from '../../src/maintenance/sweep.js'
import { deputyCli } from '../cli/run.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy } from '../helpers/deputy.js'
import {
  auditOf,
  createWorld,
  issueCode,
  REDIRECT,
  redeem,
  refresh,
  type World,
} from '../oauth/token-helpers.js'

// Issue 9 §9: expired rows were never swept — rotated refresh tokens, codes, login_throttle,
// revoked access tokens, expired dynamic clients — so the tables only grew.

const count = async (world: World, table: 'authorization_codes' | 'refresh_tokens' | 'sessions') =>
  Number(
    (
      await world.deputy.deps.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`sweeping expired rows (${dialect.name})`, () => {
    let world: World
    beforeEach(async () => {
      world = await createWorld({ database: await dialect.create() })
    })
    afterEach(() => world.deputy.dispose())

    it('removes what expired and keeps what can still be used or still detects reuse', async () => {
      const { deps, config } = world.deputy
      // A family with a rotated token: kept while it lives, so its reuse still ends the family.
      const { code } = await issueCode(world)
      const first = (await (await redeem(world, code)).json()) as { refresh_token: string }
      const second = (await (await refresh(world, first.refresh_token)).json()) as {
        refresh_token: string
      }
      await startSession(deps, world.alice.id)
      await deps.db
        .insertInto('login_throttle')
        .values({
          key: 'account:x',
          failures: 1,
          window_started_at: world.clock.now().getTime(),
          locked_until: null,
        })
        .execute()
      await deps.db
        .insertInto('revoked_access_tokens')
        .values({ jti: 'gone', expires_at: world.clock.now().getTime() + 1000 })
        .execute()
      // A dynamic registration that lapses, with a grant of its own.
      const dynamic = await deps.clients.register(
        { name: 'Lapsing', public: true, redirectUris: [REDIRECT] },
        { type: 'system', id: 'dynamic-registration' },
        { kind: 'dynamic', expiresAt: world.clock.now().getTime() + 60_000 },
      )
      await deps.grants.create({
        userId: world.alice.id,
        clientId: dynamic.client.clientId,
        resource: 'http://127.0.0.1:9999/mcp',
        scopes: ['tools:read'],
      })

      // Nothing has expired yet: a sweep removes nothing and writes no record.
      expect(Object.values(await sweepExpiredRows(deps)).every((n) => n === 0)).toBe(true)
      expect(await auditOf(world, 'store.swept')).toEqual([])
      expect(await count(world, 'refresh_tokens')).toBe(2)

      // A day on: the code (past its retention), sessions, throttle counters, the revocation
      // record and the dynamic client have lapsed; the refresh family lives for 30 days.
      world.clock.advance(Math.max(config.sessionTtlSeconds, 86_400) + 1)
      const report = await sweepExpiredRows(deps)
      expect(report).toMatchObject({
        authorizationCodes: 1,
        refreshTokens: 0,
        revokedAccessTokens: 1,
        sessions: 1,
        loginThrottle: 1,
        dynamicClients: 1,
      })
      expect(await deps.clients.get(dynamic.client.clientId)).toBeUndefined()
      // Issue 13 §5: the lapsed registration is recorded, with the grant that ended with it.
      const [expired] = await auditOf(world, 'client.expired')
      expect(JSON.parse(expired?.target ?? 'null')).toMatchObject({
        id: dynamic.client.clientId,
      })
      expect(expired?.data).toEqual({ kind: 'dynamic', grantsEnded: 1 })
      expect(await count(world, 'refresh_tokens')).toBe(2)
      const [swept] = await auditOf(world, 'store.swept')
      expect(swept?.data).toMatchObject({ authorizationCodes: 1, dynamicClients: 1 })
      // The rotated token still reads as reuse: presenting it ends the family.
      expect((await refresh(world, first.refresh_token)).status).toBe(400)
      expect((await refresh(world, second.refresh_token)).status).toBe(400)

      // Past the refresh lifetime, both of the family's rows go too.
      world.clock.advance(config.refreshTokenTtlSeconds + 1)
      await sweepExpiredRows(deps)
      expect(await count(world, 'refresh_tokens')).toBe(0)
    })

    it("keeps an operator's disabled metadata-document client, forgets a stale unused one", async () => {
      const { deps } = world.deputy
      const now = world.clock.now().getTime()
      for (const [id, status] of [
        ['https://stale.example/client.json', 'active'],
        ['https://banned.example/client.json', 'disabled'],
      ] as const) {
        await deps.db
          .insertInto('clients')
          .values({
            client_id: id,
            kind: 'metadata_document',
            name: id,
            status,
            redirect_uris: '["https://stale.example/cb"]',
            grant_types: '["authorization_code"]',
            token_endpoint_auth_method: 'none',
            secret_hash: null,
            jwks: null,
            jwks_uri: null,
            allowed_scopes: null,
            allowed_resources: null,
            application_type: 'web',
            client_uri: null,
            logo_uri: null,
            metadata: '{}',
            expires_at: now,
            created_at: now,
            updated_at: now,
          })
          .execute()
      }
      world.clock.advance(31 * 86_400)
      expect((await sweepExpiredRows(deps)).metadataDocumentClients).toBe(1)
      expect(await deps.clients.get('https://stale.example/client.json')).toBeUndefined()
      expect((await deps.clients.get('https://banned.example/client.json'))?.status).toBe(
        'disabled',
      )
      expect((await deps.clients.list()).map((c) => c.name)).toContain('Claude')
    })
  })
}

describe('sweeps run on their own, and on demand', () => {
  it('a serving Deputy sweeps every sweepIntervalSeconds', async () => {
    const deputy = await startTestDeputy({ config: { sweepIntervalSeconds: 1 } })
    try {
      const { deps } = deputy
      const user = await deps.users.create(
        { email: 'a@example.com', name: 'A' },
        { type: 'system', id: 't' },
      )
      await deps.db
        .insertInto('sessions')
        .values({
          id_hash: 'old',
          user_id: user.id,
          csrf_token: 'x',
          created_at: 0,
          expires_at: 1,
          last_seen_at: 0,
        })
        .execute()
      // No timing assertion: wait until the scheduled sweep has run (the suite timeout bounds it).
      for (;;) {
        const left = await deps.db.selectFrom('sessions').select('id_hash').execute()
        if (left.length === 0) break
        await sleep(100)
      }
    } finally {
      await deputy.dispose()
    }
  })

  it('`deputy sweep` sweeps once and says how many rows of each kind went', async () => {
    const deputy = await startTestDeputy({ config: { sweepIntervalSeconds: 0 } })
    const user = await deputy.deps.users.create(
      { email: 'a@example.com', name: 'A' },
      { type: 'system', id: 't' },
    )
    await deputy.deps.db
      .insertInto('sessions')
      .values({
        id_hash: 'old',
        user_id: user.id,
        csrf_token: 'x',
        created_at: 0,
        expires_at: 1,
        last_seen_at: 0,
      })
      .execute()
    const db = deputy.database.url
    await deputy.close()
    try {
      const result = deputyCli(['--db', db, '--json', 'sweep'], {
        env: { DEPUTY_MASTER_KEY: deputy.config.masterKey as string },
      })
      expect(result.stderr).toBe('')
      expect(JSON.parse(result.stdout)).toMatchObject({ sessions: 1, refreshTokens: 0 })
    } finally {
      await deputy.database.dispose()
    }
  })
})
