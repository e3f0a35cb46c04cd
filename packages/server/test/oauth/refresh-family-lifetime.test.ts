import { afterEach, describe, expect, it } from 'vitest'
import { sweepExpiredRows } from '../../src/maintenance/sweep.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import {
  auditOf,
  createWorld,
  errorOf,
  refresh,
  startGrant,
  tokensOf,
  type World,
} from './token-helpers.js'

// RFC 9700 §4.14.2 (refresh token expiration) / issue 13 §5: rotation alone let a grant live
// forever as long as the client refreshed within the idle lifetime. A family (all refresh tokens
// of one grant) now ends `refreshTokenFamilyMaxLifetimeSeconds` after the grant began.

const DAY = 86_400
const FAMILY = 10 * DAY
const IDLE = 4 * DAY

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `refresh token family absolute lifetime (${dialect.name})`,
    () => {
      let world: World
      afterEach(() => world?.deputy.dispose())

      const start = async () => {
        world = await createWorld({
          database: await dialect.create(),
          config: {
            refreshTokenTtlSeconds: IDLE,
            refreshTokenFamilyMaxLifetimeSeconds: FAMILY,
          },
        })
        return world
      }

      it('refreshing within the idle lifetime works until the family ends, then invalid_grant', async () => {
        await start()
        let tokens = await startGrant(world)
        // Day 3, 6, 9: each rotation is within the idle lifetime of its predecessor.
        for (let i = 0; i < 3; i++) {
          world.clock.advance(3 * DAY)
          tokens = {
            ...(await tokensOf(await refresh(world, tokens.refresh_token))),
            grantId: tokens.grantId,
          }
        }
        // The successor issued on day 9 expires with its family on day 10, not on day 13.
        const row = await world.deputy.deps.db
          .selectFrom('refresh_tokens')
          .innerJoin('grants', 'grants.id', 'refresh_tokens.grant_id')
          .select(['refresh_tokens.expires_at', 'grants.created_at'])
          .where('refresh_tokens.rotated_at', 'is', null)
          .executeTakeFirstOrThrow()
        expect(Number(row.expires_at) - Number(row.created_at)).toBe(FAMILY * 1000)

        world.clock.advance(DAY + 1)
        const late = await refresh(world, tokens.refresh_token)
        expect(late.status).toBe(400)
        expect(await errorOf(late)).toBe('invalid_grant')
        const refused = await auditOf(world, 'token.refused')
        expect(refused.at(-1)?.reason).toMatch(/refresh-token/)
      })

      it('a token past the family end is refused even if its own expiry says otherwise (a lowered setting)', async () => {
        await start()
        const tokens = await startGrant(world)
        // As if written under a longer family lifetime: its own expiry is far away.
        await world.deputy.deps.db
          .updateTable('refresh_tokens')
          .set({ expires_at: world.clock.now().getTime() + 100 * DAY * 1000 })
          .execute()
        world.clock.advance(FAMILY + 1)
        const refused = await refresh(world, tokens.refresh_token)
        expect(await errorOf(refused)).toBe('invalid_grant')
        const [last] = (await auditOf(world, 'token.refused')).slice(-1)
        expect(last?.reason).toBe('refresh-token-family-expired')
        // Nothing was rotated or issued.
        const rows = await world.deputy.deps.db.selectFrom('refresh_tokens').selectAll().execute()
        expect(rows).toHaveLength(1)
        expect(rows[0]?.rotated_at).toBeNull()

        // The sweep removes the family's tokens, whatever their own expiry.
        const report = await sweepExpiredRows(world.deputy.deps)
        expect(report.refreshTokens).toBe(1)
        expect(
          await world.deputy.deps.db.selectFrom('refresh_tokens').selectAll().execute(),
        ).toHaveLength(0)
      })

      it('a grant younger than the family lifetime keeps refreshing (the limit is not the idle one)', async () => {
        await start()
        const tokens = await startGrant(world)
        world.clock.advance(FAMILY - 60)
        // Idle lifetime passed: this is the ordinary expiry, not the family's.
        expect(await errorOf(await refresh(world, tokens.refresh_token))).toBe('invalid_grant')
        expect((await auditOf(world, 'token.refused')).at(-1)?.reason).toBe('expired-refresh-token')
      })
    },
  )
}
