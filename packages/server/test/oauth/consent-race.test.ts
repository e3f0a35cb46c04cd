import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { createWorld, RESOURCE, type World } from './token-helpers.js'

// Issue 9 §9: rememberConsent read then wrote without a lock, so on PostgreSQL two consents at once
// lost scopes (both read "nothing", the second overwrote the first) or failed with a 500 (both
// inserted). Each consent now adds to what the other wrote.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`consents at once (${dialect.name})`, () => {
    let world: World
    beforeEach(async () => {
      world = await createWorld({ database: await dialect.create() })
    })
    afterEach(() => world.deputy.dispose())

    it('concurrent consents for one agent and resource keep the union of every scope agreed to', async () => {
      const { grants } = world.deputy.deps
      const scopes = Array.from({ length: 12 }, (_, i) => `s${i}`)
      for (let round = 0; round < 3; round++) {
        const clientId =
          round === 0
            ? world.app.clientId
            : round === 1
              ? world.otherApp.clientId
              : world.agent.client.clientId
        const results = await Promise.allSettled(
          scopes.map((scope) =>
            grants.rememberConsent(world.alice.id, clientId, RESOURCE, [scope]),
          ),
        )
        expect(results.filter((r) => r.status === 'rejected')).toEqual([])
        expect(await grants.consentedScopes(world.alice.id, clientId, RESOURCE)).toEqual(
          [...scopes].sort(),
        )
      }
    })

    it('consents remembered with their records (one commit each) keep the union too, each recorded once', async () => {
      const { grants, db } = world.deputy.deps
      const scopes = Array.from({ length: 12 }, (_, i) => `s${i}`)
      const clientId = world.app.clientId
      const agreed = await Promise.all(
        scopes.map((scope) =>
          grants.rememberConsentWith(world.alice.id, clientId, RESOURCE, [scope], (all) => ({
            type: 'consent.granted',
            actor: { type: 'user', id: world.alice.id },
            data: { scope, consentedScopes: all },
          })),
        ),
      )
      expect(await grants.consentedScopes(world.alice.id, clientId, RESOURCE)).toEqual(
        [...scopes].sort(),
      )
      // Each got back what it wrote: its own scope and whatever had been agreed to before it.
      agreed.forEach((all, i) => {
        expect(all).toContain(scopes[i])
      })
      expect(agreed.some((all) => all.length === scopes.length)).toBe(true)
      const records = await db
        .selectFrom('audit_events')
        .select('data')
        .where('type', '=', 'consent.granted')
        .execute()
      const recorded = records.map((r) => JSON.parse(r.data) as { scope: string })
      expect(recorded.map((r) => r.scope).sort()).toEqual([...scopes].sort())
    })
  })
}
