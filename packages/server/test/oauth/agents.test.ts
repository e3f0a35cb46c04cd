import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256 } from '../../src/lib/random.js'
import { browser, hiddenField } from '../helpers/sign-in.js'
import {
  ALICE,
  authorizeQuery,
  BOB,
  type Browser,
  decide,
  events,
  type Fixture,
  insertClient,
  NOTES,
  SHOP,
  signedIn,
  startFixture,
} from './authorize-fixture.js'

describe('your agents: see and revoke grants (issue 3 §6)', () => {
  let f: Fixture
  let alice: Browser

  beforeEach(async () => {
    f = await startFixture()
    alice = await signedIn(f.deputy)
  })
  afterEach(async () => {
    await f.deputy.dispose()
  })

  /** Alice allows a client through the real consent page. */
  async function allow(b: Browser, client = f.app, overrides: Record<string, string> = {}) {
    const page = await b.get(`/authorize?${authorizeQuery(client, overrides)}`)
    const response = await decide(b, await page.text(), 'allow')
    expect(response.status).toBe(303)
  }

  async function userId(email: string): Promise<string> {
    return (await f.deputy.deps.users.findByEmail(email))?.id ?? ''
  }

  /** A refresh token row for a grant, as the token endpoint would store it. */
  async function addRefreshToken(grantId: string, clientId: string, user: string) {
    const now = f.deputy.deps.clock.now().getTime()
    await f.deputy.deps.db
      .insertInto('refresh_tokens')
      .values({
        token_hash: sha256(`rt-${grantId}`),
        grant_id: grantId,
        client_id: clientId,
        user_id: user,
        resource: SHOP,
        scope: 'shop:read',
        created_at: now,
        expires_at: now + 3600_000,
        rotated_at: null,
        replaced_by: null,
      })
      .execute()
  }

  /** The session's CSRF token, as any page of the account carries it (here: the sign-out form). */
  async function csrfOf(b: Browser): Promise<string> {
    return hiddenField(await (await b.get('/account')).text(), 'csrf_token')
  }

  describe('the page', () => {
    it('sends a signed-out person to sign-in first', async () => {
      const response = await browser(f.deputy).get('/account/agents')
      expect(response.status).toBe(303)
      expect(response.headers.get('location')).toBe('/login?return_to=%2Faccount%2Fagents')
    })

    it('says so when no agent has access', async () => {
      const html = await (await alice.get('/account/agents')).text()
      expect(html).toContain('No agent has access for you.')
    })

    it('lists each agent with its resource, scopes in words, since when, and a Revoke button', async () => {
      await allow(alice, f.app, { scope: 'shop:read shop:order' })
      await allow(alice, f.app, { resource: NOTES, scope: 'notes:read' })
      const response = await alice.get('/account/agents')
      expect(response.status).toBe(200)
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
      const html = await response.text()
      expect(html).toContain('Shop Assistant')
      expect(html).toContain('Example Shop')
      expect(html).toContain('Notes')
      expect(html).toContain('See your past orders.')
      expect(html).toContain('Place orders in your name.')
      expect(html).toContain('Read your notes.')
      expect(html).toContain('2026-03-01 09:00 UTC')
      expect(html).toContain('Revoke Shop Assistant')
      expect(html).toContain(`name="client_id" value="${f.app.clientId}"`)
    })

    it("does not show another person's agents", async () => {
      const bob = await signedIn(f.deputy, BOB)
      await allow(bob)
      const html = await (await alice.get('/account/agents')).text()
      expect(html).not.toContain('Shop Assistant')
    })

    it('Revoke ends the grants, their refresh tokens and the consent; the next request asks again', async () => {
      await allow(alice)
      const [grant] = await f.deputy.deps.grants.listForUser(await userId(ALICE.email))
      await addRefreshToken(grant?.id ?? '', f.app.clientId, await userId(ALICE.email))

      const response = await alice.post('/account/agents/revoke', {
        csrf_token: await csrfOf(alice),
        client_id: f.app.clientId,
      })
      expect(response.status).toBe(303)
      const after = await (await alice.get(response.headers.get('location') ?? '')).text()
      expect(after).toContain('Shop Assistant no longer has access.')
      expect(after).toContain('No agent has access for you.')

      expect(await f.deputy.deps.grants.isActive(grant?.id ?? '')).toBe(false)
      const tokens = await f.deputy.deps.db.selectFrom('refresh_tokens').selectAll().execute()
      expect(tokens).toEqual([])
      const [revoked] = await events(f.deputy, 'grant.revoked')
      expect(revoked?.reason).toBe('revoked-by-user')
      expect(await events(f.deputy, 'consent.revoked')).toHaveLength(1)

      const again = await alice.get(`/authorize?${authorizeQuery(f.app)}`)
      expect(again.status).toBe(200)
      expect(await again.text()).toContain('It will be able to:')
    })

    it('refuses a Revoke without the CSRF token and keeps the grant', async () => {
      await allow(alice)
      const response = await alice.post('/account/agents/revoke', { client_id: f.app.clientId })
      expect(response.status).toBe(403)
      expect(await response.text()).toContain('did not come from Deputy')
      expect(await f.deputy.deps.grants.listForUser(await userId(ALICE.email))).toHaveLength(1)
    })

    it("revoking does not touch another person's grant for the same agent", async () => {
      const bob = await signedIn(f.deputy, BOB)
      await allow(bob)
      await allow(alice)
      await alice.post('/account/agents/revoke', {
        csrf_token: await csrfOf(alice),
        client_id: f.app.clientId,
      })
      expect(await f.deputy.deps.grants.listForUser(await userId(BOB.email))).toHaveLength(1)
    })
  })

  describe('the JSON API', () => {
    it('GET /account/api/grants lists the signed-in person’s grants', async () => {
      await allow(alice, f.app, { scope: 'shop:read shop:order' })
      const response = await alice.get('/account/api/grants')
      expect(response.status).toBe(200)
      expect(response.headers.get('cache-control')).toBe('no-store')
      const body = (await response.json()) as { grants: Record<string, unknown>[] }
      expect(body.grants).toEqual([
        {
          id: expect.any(String),
          client_id: f.app.clientId,
          client_name: 'Shop Assistant',
          resource: SHOP,
          scopes: ['shop:order', 'shop:read'],
          created_at: '2026-03-01T09:00:00.000Z',
          first_used_at: null,
          last_used_at: null,
          agreed_text: [
            { scope: 'shop:order', sentence: 'Place orders in your name.' },
            { scope: 'shop:read', sentence: 'See your past orders.' },
          ],
        },
      ])
    })

    it('answers 401 without a session', async () => {
      const stranger = browser(f.deputy)
      expect((await stranger.get('/account/api/grants')).status).toBe(401)
      const del = await stranger.request(`/account/api/grants/${f.app.clientId}`, {
        method: 'DELETE',
      })
      expect(del.status).toBe(401)
    })

    it('DELETE needs the X-CSRF-Token header of the session', async () => {
      await allow(alice)
      const path = `/account/api/grants/${f.app.clientId}`
      const missing = await alice.request(path, { method: 'DELETE' })
      expect(missing.status).toBe(403)
      const wrong = await alice.request(path, {
        method: 'DELETE',
        headers: { 'X-CSRF-Token': 'x'.repeat(43) },
      })
      expect(wrong.status).toBe(403)
      expect(await f.deputy.deps.grants.listForUser(await userId(ALICE.email))).toHaveLength(1)
    })

    it('DELETE revokes every grant for that agent and answers how many', async () => {
      await allow(alice)
      f.clock.advance(60)
      await allow(alice, f.app, { resource: NOTES, scope: 'notes:read' })
      const response = await alice.request(`/account/api/grants/${f.app.clientId}`, {
        method: 'DELETE',
        headers: { 'X-CSRF-Token': await csrfOf(alice) },
      })
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ client_id: f.app.clientId, revoked_grants: 2 })
      expect(await f.deputy.deps.grants.listForUser(await userId(ALICE.email))).toEqual([])
    })

    it('DELETE works for a URL client id, percent-encoded in the path', async () => {
      const cimd = await insertClient(f.deputy, {
        clientId: 'https://tools.example/agent.json',
        name: 'Tool Agent',
        kind: 'metadata_document',
        redirectUris: ['https://tools.example/cb'],
      })
      await allow(alice, cimd)
      const response = await alice.request(
        `/account/api/grants/${encodeURIComponent(cimd.clientId)}`,
        { method: 'DELETE', headers: { 'X-CSRF-Token': await csrfOf(alice) } },
      )
      expect(response.status).toBe(200)
      expect(await response.json()).toMatchObject({ client_id: cimd.clientId, revoked_grants: 1 })
    })

    it('DELETE of an unknown agent answers 404', async () => {
      const response = await alice.request('/account/api/grants/client_nobody', {
        method: 'DELETE',
        headers: { 'X-CSRF-Token': await csrfOf(alice) },
      })
      expect(response.status).toBe(404)
    })
  })
})
