import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import {
  authorizeQuery,
  type Browser,
  decide,
  type Fixture,
  pkce,
  redirected,
  SHOP,
  signedIn,
  startFixture,
} from './authorize-fixture.js'

// Issue 15 §2: "your agents" shows when each agent first and last used what it was given (the
// token endpoint records it, at most once a minute per grant) and the consent sentences the
// person agreed to, kept as they read them even if the resource rewords a scope later.

const SYSTEM = { type: 'system', id: 'test' } as const

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `your agents: first and last use, the consent agreed to (issue 15 §2) on ${dialect.name}`,
    () => {
      let f: Fixture
      let alice: Browser

      beforeEach(async () => {
        f = await startFixture({ database: await dialect.create() })
        alice = await signedIn(f.deputy)
      })
      afterEach(async () => {
        await f.deputy.dispose()
      })

      /** Alice allows the app on the real consent page; returns the code and its verifier. */
      async function allow(scope = 'shop:read shop:order') {
        const { verifier, challenge } = pkce()
        const page = await alice.get(
          `/authorize?${authorizeQuery(f.app, { scope, code_challenge: challenge })}`,
        )
        const response = await decide(alice, await page.text(), 'allow')
        const code = redirected(response).params.get('code') ?? ''
        return { code, verifier }
      }

      async function token(fields: Record<string, string>) {
        const response = await f.deputy.app.request('http://localhost:8080/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ client_id: f.app.clientId, ...fields }).toString(),
        })
        expect(response.status, await response.clone().text()).toBe(200)
        return (await response.json()) as { refresh_token: string }
      }

      async function onlyGrant() {
        const user = await f.deputy.deps.users.findByEmail('alice@example.com')
        const grants = await f.deputy.deps.grants.listForUser(user?.id ?? '')
        expect(grants).toHaveLength(1)
        return grants[0] as (typeof grants)[number]
      }

      it('a grant not yet used says so; the first token sets first and last use, shown on the page', async () => {
        const { code, verifier } = await allow()
        expect((await onlyGrant()).firstUsedAt).toBeNull()
        expect(await (await alice.get('/account/agents')).text()).toContain('Not used yet.')

        f.clock.advance(40)
        await token({
          grant_type: 'authorization_code',
          code,
          code_verifier: verifier,
          redirect_uri: 'https://app.example/cb',
        })
        const grant = await onlyGrant()
        expect(grant.firstUsedAt).toBe('2026-03-01T09:00:40.000Z')
        expect(grant.lastUsedAt).toBe('2026-03-01T09:00:40.000Z')
        const html = await (await alice.get('/account/agents')).text()
        expect(html).not.toContain('Not used yet.')
        expect(html).toMatch(/First used <time[^>]*>2026-03-01 09:00 UTC<\/time> · last used/)
      })

      it('refreshes within a minute do not write last use again; the first one after a minute does', async () => {
        const { code, verifier } = await allow()
        let { refresh_token } = await token({
          grant_type: 'authorization_code',
          code,
          code_verifier: verifier,
          redirect_uri: 'https://app.example/cb',
        })
        f.clock.advance(30)
        ;({ refresh_token } = await token({ grant_type: 'refresh_token', refresh_token }))
        expect((await onlyGrant()).lastUsedAt).toBe('2026-03-01T09:00:00.000Z')

        f.clock.advance(31)
        await token({ grant_type: 'refresh_token', refresh_token })
        const grant = await onlyGrant()
        expect(grant.firstUsedAt).toBe('2026-03-01T09:00:00.000Z')
        expect(grant.lastUsedAt).toBe('2026-03-01T09:01:01.000Z')
      })

      it('shows the sentences agreed to, as they were, after the resource rewords a scope', async () => {
        await allow('shop:read')
        expect((await onlyGrant()).agreedText).toEqual([
          { scope: 'shop:read', sentence: 'See your past orders.' },
        ])
        await f.deputy.deps.resources.put(
          {
            uri: SHOP,
            name: 'Example Shop',
            scopes: { 'shop:read': 'See every order you ever placed.', 'shop:order': 'Order.' },
            isDefault: true,
          },
          SYSTEM,
        )
        const html = await (await alice.get('/account/agents')).text()
        // Today's wording beside the scope, the agreed wording in the consent quoted below it.
        expect(html).toContain('See every order you ever placed.')
        expect(html).toMatch(
          /What you agreed to on <time[^>]*>2026-03-01 09:00 UTC<\/time>: allow Shop Assistant to<\/p><ul><li>See your past orders\.<\/li>/,
        )
        const api = (await (await alice.get('/account/api/grants')).json()) as {
          grants: Record<string, unknown>[]
        }
        expect(api.grants[0]).toMatchObject({
          first_used_at: null,
          last_used_at: null,
          agreed_text: [{ scope: 'shop:read', sentence: 'See your past orders.' }],
        })
      })
    },
  )
}
