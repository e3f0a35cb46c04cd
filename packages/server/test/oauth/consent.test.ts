import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AUTHORIZATION_REQUEST_TTL_MS } from '../../src/oauth/authorization-requests.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { browser, hiddenField } from '../helpers/sign-in.js'
import {
  ALICE,
  authorizeQuery,
  BOB,
  type Browser,
  decide,
  events,
  type Fixture,
  ISSUER,
  insertClient,
  redirected,
  SHOP,
  signedIn,
  startFixture,
} from './authorize-fixture.js'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `consent (issue 3 §2; MCP security best practices; RFC 9700 §4.7) on ${dialect.name}`,
    () => {
      let f: Fixture
      let b: Browser

      beforeEach(async () => {
        f = await startFixture({ database: await dialect.create() })
        b = await signedIn(f.deputy)
      })
      afterEach(async () => {
        await f.deputy.dispose()
      })

      /** Opens /authorize and returns the consent page's HTML (asserting it is one). */
      async function consentFor(overrides: Record<string, string | null> = {}, client = f.app) {
        const response = await b.get(`/authorize?${authorizeQuery(client, overrides)}`)
        expect(response.status).toBe(200)
        return response.text()
      }

      async function grantsOf(userEmail = ALICE.email) {
        const user = await f.deputy.deps.users.findByEmail(userEmail)
        return f.deputy.deps.grants.listForUser(user?.id ?? '')
      }

      it('shows the client name, the redirect host and each scope in words, with Allow and Deny', async () => {
        const html = await consentFor({ scope: 'shop:read shop:order' })
        expect(html).toContain('Shop Assistant')
        expect(html).toContain('app.example')
        expect(html).toContain('See your past orders.')
        expect(html).toContain('Place orders in your name.')
        expect(html).toContain('Example Shop')
        expect(html).toContain(ALICE.email)
        expect(html).toMatch(/name="decision" value="allow"/)
        expect(html).toMatch(/name="decision" value="deny"/)
        // No inline script or style: the strict CSP would block them anyway.
        expect(html).not.toMatch(/<script|style=/)
      })

      it('puts OIDC scopes into words too', async () => {
        const html = await consentFor({ scope: 'openid email offline_access' })
        expect(html).toContain('See your email address.')
        expect(html).toContain('Keep its access after you close it')
      })

      it("sends frame-ancestors 'none' and widens form-action to the redirect origin only", async () => {
        const response = await b.get(`/authorize?${authorizeQuery(f.app)}`)
        const csp = response.headers.get('content-security-policy') ?? ''
        expect(csp).toContain("frame-ancestors 'none'")
        expect(csp).toContain("form-action 'self' https://app.example;")
        expect(csp).toContain("default-src 'none'")
        expect(response.headers.get('x-frame-options')).toBe('DENY')
        expect(response.headers.get('cache-control')).toBe('no-store')
      })

      it('flags a redirect host that differs from a URL client_id host', async () => {
        const cimd = await insertClient(f.deputy, {
          clientId: 'https://tools.example/agent.json',
          name: 'Tool Agent',
          kind: 'metadata_document',
          redirectUris: ['https://elsewhere.example/cb'],
        })
        const html = await consentFor({}, cimd)
        expect(html).toContain('This app is published at tools.example, but it returns to')
        expect(html).toContain('elsewhere.example')
        expect(html).toContain('registered itself')
      })

      it('does not flag a URL client_id whose redirect is on the same host', async () => {
        const cimd = await insertClient(f.deputy, {
          clientId: 'https://tools.example/agent.json',
          name: 'Tool Agent',
          kind: 'metadata_document',
          redirectUris: ['https://tools.example/cb'],
        })
        const html = await consentFor({}, cimd)
        expect(html).not.toContain('This app is published at')
      })

      it('warns when the client can only return to this computer (loopback only)', async () => {
        const html = await consentFor({ redirect_uri: 'http://127.0.0.1:51000/cb' }, f.native)
        expect(html).toContain('returns to a program on your own computer (127.0.0.1:51000)')
        const appHtml = await consentFor()
        expect(appHtml).not.toContain('your own computer')
      })

      it('Allow: 303 to the redirect URI with code, state and iss; the code carries the request', async () => {
        const html = await consentFor({ scope: 'shop:read', nonce: 'n-1' })
        const response = await decide(b, html, 'allow')
        expect(response.status).toBe(303)
        const { base, params } = redirected(response)
        expect(base).toBe('https://app.example/cb')
        expect(params.get('state')).toBe('st-123')
        expect(params.get('iss')).toBe(ISSUER)
        const code = params.get('code') ?? ''
        expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const consumed = await f.deputy.deps.authorizationCodes.consume(code)
        expect(consumed.status).toBe('ok')
        if (consumed.status !== 'ok') return
        expect(consumed.code).toMatchObject({
          clientId: f.app.clientId,
          redirectUri: 'https://app.example/cb',
          resource: SHOP,
          scopes: ['shop:read'],
          nonce: 'n-1',
        })
        expect(consumed.code.codeChallenge).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const [grant] = await grantsOf()
        expect(grant).toMatchObject({
          clientId: f.app.clientId,
          resource: SHOP,
          scopes: ['shop:read'],
        })
      })

      it('records consent.granted and code.issued, never the code itself', async () => {
        const response = await decide(b, await consentFor(), 'allow')
        const code = redirected(response).params.get('code') ?? ''
        const [granted] = await events(f.deputy, 'consent.granted')
        expect(JSON.parse(String(granted?.data))).toMatchObject({
          resource: SHOP,
          scopes: ['shop:read'],
        })
        const [issued] = await events(f.deputy, 'code.issued')
        expect(JSON.parse(String(issued?.data))).toMatchObject({
          client: f.app.clientId,
          resource: SHOP,
          scopes: ['shop:read'],
        })
        const all = await f.deputy.deps.db.selectFrom('audit_events').selectAll().execute()
        expect(JSON.stringify(all)).not.toContain(code)
      })

      it('Deny: 303 with error=access_denied, state and iss; no grant, no consent remembered', async () => {
        const response = await decide(b, await consentFor(), 'deny')
        expect(response.status).toBe(303)
        const { base, params } = redirected(response)
        expect(base).toBe('https://app.example/cb')
        expect(params.get('error')).toBe('access_denied')
        expect(params.get('state')).toBe('st-123')
        expect(params.get('iss')).toBe(ISSUER)
        expect(params.get('code')).toBeNull()
        expect(await grantsOf()).toEqual([])
        expect(await events(f.deputy, 'consent.denied')).toHaveLength(1)
        // Denying remembers nothing: the next request asks again.
        expect(await consentFor()).toContain('Allow')
      })

      it('remembers consent: a second authorization skips the page and returns a code', async () => {
        await decide(b, await consentFor(), 'allow')
        const second = await b.get(`/authorize?${authorizeQuery(f.app, { state: 'again' })}`)
        expect(second.status).toBe(303)
        const { params } = redirected(second)
        expect(params.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(params.get('state')).toBe('again')
        expect(params.get('iss')).toBe(ISSUER)
        expect(await events(f.deputy, 'consent.granted')).toHaveLength(1)
        expect(await events(f.deputy, 'code.issued')).toHaveLength(2)
      })

      it('prompt=consent asks again even when consent is remembered', async () => {
        await decide(b, await consentFor(), 'allow')
        const html = await consentFor({ prompt: 'consent' })
        expect(html).toContain('You already allowed it to:')
      })

      it('step-up asks only about the new scope, and the grant holds the union', async () => {
        await decide(b, await consentFor({ scope: 'shop:read' }), 'allow')
        f.clock.advance(60)
        const html = await consentFor({ scope: 'shop:order' })
        const [asked, already] = html.split('You already allowed it to:')
        expect(asked).toContain('It now also asks to:')
        expect(asked).toContain('Place orders in your name.')
        expect(asked).not.toContain('See your past orders.')
        expect(already).toContain('See your past orders.')
        const response = await decide(b, html, 'allow')
        const consumed = await f.deputy.deps.authorizationCodes.consume(
          redirected(response).params.get('code') ?? '',
        )
        expect(consumed).toMatchObject({
          status: 'ok',
          code: { scopes: ['shop:order', 'shop:read'] },
        })
        const [newest] = await grantsOf()
        expect(newest?.scopes).toEqual(['shop:order', 'shop:read'])
      })

      it('consent is per client: another client with the same name and host does not inherit it', async () => {
        await decide(b, await consentFor(), 'allow')
        const twin = (
          await f.deputy.deps.clients.register(
            { name: 'Shop Assistant', redirectUris: ['https://app.example/cb'], public: true },
            { type: 'system', id: 'test' },
          )
        ).client
        const response = await b.get(`/authorize?${authorizeQuery(twin)}`)
        expect(response.status).toBe(200)
        expect(await response.text()).toContain('It will be able to:')
      })

      it('consent is per person: Bob is asked although Alice agreed', async () => {
        await decide(b, await consentFor(), 'allow')
        const bob = await signedIn(f.deputy, BOB)
        const response = await bob.get(`/authorize?${authorizeQuery(f.app)}`)
        expect(response.status).toBe(200)
      })

      it('consent is per resource: agreeing for the shop does not cover notes', async () => {
        await decide(b, await consentFor(), 'allow')
        const response = await b.get(
          `/authorize?${authorizeQuery(f.app, { resource: 'https://notes.example/mcp', scope: 'notes:read' })}`,
        )
        expect(response.status).toBe(200)
      })

      it('prompt=none with a session but no consent answers consent_required', async () => {
        const response = await b.get(`/authorize?${authorizeQuery(f.app, { prompt: 'none' })}`)
        expect(response.status).toBe(303)
        const { params } = redirected(response)
        expect(params.get('error')).toBe('consent_required')
        expect(params.get('iss')).toBe(ISSUER)
        expect(params.get('state')).toBe('st-123')
      })

      it('prompt=none with remembered consent returns a code without a page', async () => {
        await decide(b, await consentFor(), 'allow')
        const response = await b.get(`/authorize?${authorizeQuery(f.app, { prompt: 'none' })}`)
        expect(redirected(response).params.get('code')).toBeTruthy()
      })

      it('refuses a consent POST without a CSRF token, and issues nothing', async () => {
        const html = await consentFor()
        const response = await b.post('/authorize/consent', {
          request: hiddenField(html, 'request'),
          decision: 'allow',
        })
        expect(response.status).toBe(403)
        expect(response.headers.get('location')).toBeNull()
        expect(await response.text()).toContain('did not come from Deputy')
        expect(await grantsOf()).toEqual([])
      })

      it('refuses a consent POST with another session’s CSRF token', async () => {
        const bob = await signedIn(f.deputy, BOB)
        const bobPage = await (await bob.get(`/authorize?${authorizeQuery(f.app)}`)).text()
        const html = await consentFor()
        const response = await decide(b, html, 'allow', {
          csrf_token: hiddenField(bobPage, 'csrf_token'),
        })
        expect(response.status).toBe(403)
        expect(response.headers.get('location')).toBeNull()
        expect(await grantsOf()).toEqual([])
      })

      it('refuses a consent POST that is not a form', async () => {
        const html = await consentFor()
        const response = await b.request('/authorize/consent', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            request: hiddenField(html, 'request'),
            csrf_token: hiddenField(html, 'csrf_token'),
            decision: 'allow',
          }),
        })
        expect(response.status).toBe(415)
        expect(await grantsOf()).toEqual([])
      })

      it('the request handle is single-use: a second Allow gets a page and no code', async () => {
        const html = await consentFor()
        const first = await decide(b, html, 'allow')
        expect(redirected(first).params.get('code')).toBeTruthy()
        const second = await decide(b, html, 'allow')
        expect(second.status).toBe(400)
        expect(second.headers.get('location')).toBeNull()
        expect(await second.text()).toContain('expired or was already used')
        const denyAfter = await decide(b, html, 'deny')
        expect(denyAfter.headers.get('location')).toBeNull()
        expect(await events(f.deputy, 'code.issued')).toHaveLength(1)
      })

      it('the request handle expires after ten minutes', async () => {
        const html = await consentFor()
        f.clock.advance(AUTHORIZATION_REQUEST_TTL_MS / 1000 + 1)
        const response = await decide(b, html, 'allow')
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
        expect(await response.text()).toContain('expired or was already used')
        const handle = hiddenField(html, 'request')
        const again = await b.get(`/authorize/continue?request=${handle}`)
        expect(again.status).toBe(400)
      })

      it('a made-up or truncated handle gets the expired page', async () => {
        const handle = hiddenField(await consentFor(), 'request')
        for (const h of ['nope', handle.slice(0, -1), `${handle}x`]) {
          const response = await b.get(`/authorize/continue?request=${encodeURIComponent(h)}`)
          expect(response.status).toBe(400)
          expect(await response.text()).toContain('expired or was already used')
        }
      })

      it('stores only the SHA-256 of the handle', async () => {
        const handle = hiddenField(await consentFor(), 'request')
        const rows = await f.deputy.deps.db
          .selectFrom('authorization_requests')
          .selectAll()
          .execute()
        expect(rows).toHaveLength(1)
        expect(JSON.stringify(rows)).not.toContain(handle)
      })

      it('a client disabled while the page was open gets no code', async () => {
        const html = await consentFor()
        await f.deputy.deps.clients.disable(f.app.clientId, { type: 'system', id: 'test' })
        const response = await decide(b, html, 'allow')
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
      })

      it('after signing in with consent remembered, a page carries the browser on (no POST redirect chain)', async () => {
        await decide(b, await consentFor(), 'allow')
        const fresh = browser(f.deputy)
        const start = await fresh.get(`/authorize?${authorizeQuery(f.app)}`)
        const returnTo =
          new URL(start.headers.get('location') ?? '', ISSUER).searchParams.get('return_to') ?? ''
        await fresh.signIn(ALICE.email, ALICE.password, returnTo)
        const page = await fresh.get(returnTo)
        expect(page.status).toBe(200)
        const html = await page.text()
        const refresh = /<meta http-equiv="refresh" content="0;url=([^"]+)"/.exec(html)
        const target = new URL((refresh?.[1] ?? '').replaceAll('&amp;', '&'))
        expect(target.origin + target.pathname).toBe('https://app.example/cb')
        expect(target.searchParams.get('code')).toBeTruthy()
        expect(target.searchParams.get('iss')).toBe(ISSUER)
        // The handle was used up by that code.
        const again = await fresh.get(returnTo)
        expect(again.status).toBe(400)
      })

      it('a consent POST from a signed-out browser goes to sign-in, not to the client', async () => {
        const html = await consentFor()
        const stranger = browser(f.deputy)
        const response = await decide(stranger, html, 'allow')
        expect(response.status).toBe(303)
        expect(response.headers.get('location')).toMatch(/^\/login\?return_to=/)
        expect(await grantsOf()).toEqual([])
      })
    },
  )
}
