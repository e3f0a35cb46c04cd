import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import type { Client } from '../../src/oauth/clients.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import {
  buildServer,
  issueShopCode,
  type Replica,
  SHOP,
  startReplica,
} from '../helpers/replicas.js'

// Issue 9 §11: one code redeemed on three processes at once on PostgreSQL — single use held, but
// a losing replica sometimes answered 500 (`deadlock detected` in the grant revocation a replay
// triggers), and sometimes nobody got tokens because the replay's revocation landed before the
// winner issued. The winner gets its tokens, every loser `invalid_grant`, and a replay after the
// winner issued revokes what it issued.

const ADMIN: Actor = { type: 'system', id: 'test' }
const { resource: RESOURCE, redirect: REDIRECT, verifier: VERIFIER } = SHOP
const ISSUER = 'http://localhost:8080'
const ROUNDS = 15

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `one code redeemed on three processes at once (${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let replicas: Replica[] = []
      let dir: string
      let app: Client
      let userId: string

      beforeAll(async () => {
        buildServer()
        dir = mkdtempSync(join(tmpdir(), 'deputy-code-race-'))
        const masterKey = generateMasterKey()
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { masterKey, issuer: ISSUER },
        })
        const { deps } = deputy
        userId = (await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)).id
        await deps.resources.put(
          { uri: RESOURCE, scopes: { 'shop:read': 'See orders' }, isDefault: true },
          ADMIN,
        )
        app = (
          await deps.clients.register(
            { name: 'Agent', public: true, redirectUris: [REDIRECT] },
            ADMIN,
          )
        ).client
        const env = {
          DEPUTY_DATABASE_URL: deputy.database.url,
          DEPUTY_MASTER_KEY: masterKey,
          DEPUTY_ISSUER: ISSUER,
        }
        replicas = await Promise.all([0, 1, 2].map(() => startReplica(dir, env)))
      }, 180_000)

      afterAll(async () => {
        await Promise.all(replicas.map((r) => r.stop()))
        await deputy?.dispose()
        if (dir) rmSync(dir, { recursive: true, force: true })
      })

      const newCode = () => issueShopCode(deputy.deps, { userId, clientId: app.clientId })

      const post = (replica: Replica, params: Record<string, string>) =>
        fetch(`${replica.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ client_id: app.clientId, ...params }),
        })
      const redeem = (replica: Replica, code: string) =>
        post(replica, {
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: VERIFIER,
        })

      it('exactly one redemption wins, every loser gets invalid_grant, never a 500', async () => {
        const reasons = new Set<string>()
        for (let round = 0; round < ROUNDS; round++) {
          const { code, grantId } = await newCode()
          const answers = await Promise.all(replicas.map((r) => redeem(r, code)))
          const statuses = answers.map((a) => a.status)
          expect(
            statuses.filter((s) => s === 200),
            `round ${round}: ${statuses}`,
          ).toHaveLength(1)
          expect(
            statuses.filter((s) => s === 400),
            `round ${round}: ${statuses}`,
          ).toHaveLength(2)
          let refreshToken = ''
          for (const answer of answers) {
            const body = (await answer.json()) as { error?: string; refresh_token?: string }
            if (answer.status === 400) expect(body.error).toBe('invalid_grant')
            else refreshToken = body.refresh_token as string
          }
          // A loser that ran after the winner had issued revoked it (a replay); one that raced it
          // only lost. Either way the grant says which, and the tokens agree with it.
          const revoked = !(await deputy.deps.grants.isActive(grantId))
          const refreshed = await post(replicas[round % 3] as Replica, {
            grant_type: 'refresh_token',
            refresh_token: refreshToken,
          })
          expect(refreshed.status).toBe(revoked ? 400 : 200)
          const refusals = await deputy.deps.db
            .selectFrom('audit_events')
            .select(['reason', 'data'])
            .where('type', '=', 'token.refused')
            .execute()
          for (const r of refusals)
            if (JSON.parse(r.data).grantType === 'authorization_code') reasons.add(r.reason ?? '')
        }
        expect(
          [...reasons].filter((r) => !/^code-(replayed|redemption-in-progress)$/.test(r)),
        ).toEqual([])
      })

      it('a replay after the winner issued revokes what it issued', async () => {
        const { code, grantId } = await newCode()
        const won = await redeem(replicas[0] as Replica, code)
        expect(won.status).toBe(200)
        const { refresh_token } = (await won.json()) as { refresh_token: string }
        const replay = await redeem(replicas[1] as Replica, code)
        expect(replay.status).toBe(400)
        expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant')
        expect(await deputy.deps.grants.isActive(grantId)).toBe(false)
        const refreshed = await post(replicas[2] as Replica, {
          grant_type: 'refresh_token',
          refresh_token,
        })
        expect(refreshed.status).toBe(400)
      })
    },
  )
}
