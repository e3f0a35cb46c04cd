import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_STATE_LENGTH } from '../../src/oauth/authorize.js'
import { listen } from '../../src/server.js'
import { browser } from '../helpers/sign-in.js'
import {
  authorizeQuery,
  decide,
  events,
  type Fixture,
  ISSUER,
  insertClient,
  NOTES,
  redirected,
  SHOP,
  signedIn,
  startFixture,
} from './authorize-fixture.js'

describe('authorization endpoint (issue 3 §2; RFC 6749 §4.1, RFC 9700, RFC 7636, RFC 8707, RFC 9207)', () => {
  let f: Fixture

  beforeEach(async () => {
    f = await startFixture()
  })
  afterEach(async () => {
    await f.deputy.dispose()
  })

  /** GET /authorize as a browser without a session would. */
  const get = (query: string, init: RequestInit = {}) =>
    f.deputy.app.request(`${ISSUER}/authorize?${query}`, init)

  /** Asserts the Deputy error page: 400, one line, no redirect anywhere. */
  async function expectStopPage(response: Response, line: RegExp) {
    expect(response.status).toBe(400)
    expect(response.headers.get('location')).toBeNull()
    expect(response.headers.get('content-type')).toContain('text/html')
    const html = await response.text()
    expect(html).toMatch(line)
    expect(html).not.toMatch(/at .*\.ts:\d+/)
  }

  describe('RFC 9700 §4.1: redirect_uri is compared exactly, errors stay on a Deputy page', () => {
    const variants = [
      ['path suffix', 'https://app.example/cb/evil'],
      ['path prefix', 'https://app.example/cbx'],
      ['dot segment', 'https://app.example/cb/../evil'],
      ['encoded dot segment', 'https://app.example/cb%2F..%2Fevil'],
      ['double-encoded slash', 'https://app.example/cb%252f..'],
      ['semicolon path trick', 'https://app.example/cb..;/evil'],
      ['backslash', 'https://app.example\\cb'],
      ['case change', 'https://APP.example/cb'],
      ['path case change', 'https://app.example/CB'],
      ['trailing slash', 'https://app.example/cb/'],
      ['extra query', 'https://app.example/cb?x=1'],
      ['fragment', 'https://app.example/cb#x'],
      ['user info host confusion', 'https://app.example@evil.example/cb'],
      ['suffix domain', 'https://app.example.evil/cb'],
      ['http downgrade', 'http://app.example/cb'],
      ['explicit default port', 'https://app.example:443/cb'],
    ] as const
    for (const [name, uri] of variants) {
      it(`refuses a registered https://app.example/cb variant: ${name}`, async () => {
        const response = await get(authorizeQuery(f.app, { redirect_uri: uri }))
        await expectStopPage(response, /has not registered/)
      })
    }

    it('accepts the registered redirect URI exactly (to sign-in, then back)', async () => {
      const response = await get(authorizeQuery(f.app))
      expect(response.status).toBe(303)
      expect(response.headers.get('location')).toMatch(
        /^\/login\?return_to=%2Fauthorize%2Fcontinue%3Frequest%3D/,
      )
    })

    it('writes authorization.refused with the reason, and no redirect URI is followed', async () => {
      await get(authorizeQuery(f.app, { redirect_uri: 'https://evil.example/cb' }))
      const [event] = await events(f.deputy, 'authorization.refused')
      expect(event?.reason).toBe('redirect-uri-mismatch')
      expect(JSON.parse(String(event?.actor))).toMatchObject({ id: f.app.clientId })
    })
  })

  describe('RFC 8252 §7.3: loopback redirects may use any port, nothing else varies', () => {
    it('accepts http://127.0.0.1/cb on any port', async () => {
      const b = await signedIn(f.deputy)
      for (const port of ['49152', '8080', '65535']) {
        const uri = `http://127.0.0.1:${port}/cb`
        const response = await b.get(
          `/authorize?${authorizeQuery(f.native, { redirect_uri: uri })}`,
        )
        expect(response.status).toBe(200)
        expect(await response.text()).toContain('Desktop Agent')
      }
    })

    for (const [name, uri] of [
      ['other path', 'http://127.0.0.1:5000/other'],
      ['other host', 'http://127.0.0.2:5000/cb'],
      ['host suffix', 'http://127.0.0.1.evil.example:5000/cb'],
      ['localhost user info', 'http://localhost@evil.example/cb'],
      ['user info on loopback', 'http://evil@127.0.0.1:5000/cb'],
      ['extra query', 'http://127.0.0.1:5000/cb?x=1'],
      ['https instead of http', 'https://127.0.0.1:5000/cb'],
      ['localhost instead of 127.0.0.1', 'http://localhost:5000/cb'],
    ] as const) {
      it(`refuses a loopback variant: ${name}`, async () => {
        const response = await get(authorizeQuery(f.native, { redirect_uri: uri }))
        await expectStopPage(response, /has not registered/)
      })
    }

    it('does not stretch port flexibility to non-loopback redirects', async () => {
      const response = await get(
        authorizeQuery(f.app, { redirect_uri: 'https://app.example:8443/cb' }),
      )
      await expectStopPage(response, /has not registered/)
    })
  })

  describe('RFC 6749 §4.1.2.1: unknown clients and missing redirect URIs', () => {
    it('shows a page for an unknown client_id', async () => {
      const response = await get(
        authorizeQuery({ clientId: 'nobody', redirectUris: ['https://app.example/cb'] }),
      )
      await expectStopPage(response, /not known to Deputy/)
    })

    it('shows a page when client_id is missing', async () => {
      const response = await get(authorizeQuery(f.app, { client_id: null }))
      await expectStopPage(response, /client_id is missing/)
    })

    it('shows a page for a disabled client', async () => {
      await f.deputy.deps.clients.disable(f.app.clientId, { type: 'system', id: 'test' })
      const response = await get(authorizeQuery(f.app))
      await expectStopPage(response, /not known to Deputy, or it has been disabled/)
    })

    it('requires redirect_uri when the client registered more than one', async () => {
      const response = await get(authorizeQuery(f.twoRedirects, { redirect_uri: null }))
      await expectStopPage(response, /redirect_uri is missing/)
    })

    it('uses the only registered redirect URI when redirect_uri is left out', async () => {
      const b = await signedIn(f.deputy)
      const response = await b.get(
        `/authorize?${authorizeQuery(f.app, { redirect_uri: null, code_challenge_method: 'plain' })}`,
      )
      expect(redirected(response).base).toBe('https://app.example/cb')
      expect(redirected(response).params.get('error')).toBe('invalid_request')
    })
  })

  describe('RFC 6749 §3.1: parameters sent twice are refused before anything else', () => {
    for (const name of [
      'client_id',
      'redirect_uri',
      'scope',
      'code_challenge',
      'state',
      'response_type',
    ]) {
      it(`refuses a duplicated ${name} on a page`, async () => {
        const query = `${authorizeQuery(f.app)}&${name}=${encodeURIComponent(
          name === 'redirect_uri' ? 'https://evil.example/cb' : 'second',
        )}`
        const response = await get(query)
        await expectStopPage(
          response,
          new RegExp(`sent &quot;${name}&quot; more than once|sent "${name}" more than once`),
        )
      })
    }

    it('allows resource more than once only to refuse it as invalid_target (RFC 8707 §2)', async () => {
      const response = await get(
        `${authorizeQuery(f.app)}&resource=${encodeURIComponent(SHOP)}&resource=${encodeURIComponent(NOTES)}`,
      )
      expect(response.status).toBe(303)
      expect(redirected(response).params.get('error')).toBe('invalid_target')
    })
  })

  describe('errors after the redirect URI is trusted go back with error, state and iss', () => {
    async function expectErrorRedirect(query: string, error: string) {
      const response = await get(query)
      expect(response.status).toBe(303)
      const { base, params } = redirected(response)
      expect(base).toBe('https://app.example/cb')
      expect(params.get('error')).toBe(error)
      expect(params.get('error_description')).toBeTruthy()
      expect(params.get('state')).toBe('st-123')
      // RFC 9207 §2: exactly the configured issuer, on error responses too.
      expect(params.get('iss')).toBe(ISSUER)
      expect(params.get('code')).toBeNull()
      return params
    }

    it('RFC 7636 / OAuth 2.1: refuses a request without code_challenge', async () => {
      await expectErrorRedirect(authorizeQuery(f.app, { code_challenge: null }), 'invalid_request')
    })

    it('refuses code_challenge_method=plain', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { code_challenge_method: 'plain' }),
        'invalid_request',
      )
    })

    it('refuses a missing code_challenge_method (RFC 7636 §4.3 makes it mean plain)', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { code_challenge_method: null }),
        'invalid_request',
      )
    })

    it('refuses an unknown code_challenge_method', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { code_challenge_method: 'S512' }),
        'invalid_request',
      )
    })

    for (const [name, challenge] of [
      ['too short', 'a'.repeat(42)],
      ['too long', 'a'.repeat(44)],
      ['not base64url', `${'a'.repeat(42)}+`],
      ['padded', `${'a'.repeat(42)}=`],
    ] as const) {
      it(`refuses a malformed code_challenge: ${name}`, async () => {
        await expectErrorRedirect(
          authorizeQuery(f.app, { code_challenge: challenge }),
          'invalid_request',
        )
      })
    }

    it('refuses response_type=token (no implicit grant, OAuth 2.1 §4.1)', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { response_type: 'token' }),
        'unsupported_response_type',
      )
    })

    it('refuses response_type=id_token token', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { response_type: 'id_token token' }),
        'unsupported_response_type',
      )
    })

    it('refuses a missing response_type', async () => {
      await expectErrorRedirect(authorizeQuery(f.app, { response_type: null }), 'invalid_request')
    })

    it('RFC 8707 §2: refuses an unknown resource with invalid_target', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { resource: 'https://unknown.example/mcp' }),
        'invalid_target',
      )
    })

    it('refuses a resource that differs from a registered one only by a trailing slash', async () => {
      await expectErrorRedirect(authorizeQuery(f.app, { resource: `${SHOP}/` }), 'invalid_target')
    })

    it('refuses a scope the resource does not define with invalid_scope', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { scope: 'shop:read notes:read' }),
        'invalid_scope',
      )
    })

    it('refuses a malformed scope', async () => {
      await expectErrorRedirect(authorizeQuery(f.app, { scope: 'shop:read "x"' }), 'invalid_scope')
    })

    it('refuses response_mode other than query', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { response_mode: 'fragment' }),
        'invalid_request',
      )
    })

    it('refuses request objects it does not support', async () => {
      await expectErrorRedirect(
        authorizeQuery(f.app, { request_uri: 'urn:ietf:params:oauth:request_uri:x' }),
        'invalid_request',
      )
    })

    it('OIDC §3.1.2.6: prompt=none without a session answers login_required', async () => {
      await expectErrorRedirect(authorizeQuery(f.app, { prompt: 'none' }), 'login_required')
    })

    it('records the refusal in the audit chain with the reason', async () => {
      await get(authorizeQuery(f.app, { code_challenge_method: 'plain' }))
      const [event] = await events(f.deputy, 'authorization.refused')
      expect(event?.reason).toBe('pkce-method plain')
      expect(JSON.parse(String(event?.data))).toEqual({ error: 'invalid_request' })
    })

    it('keeps an existing query of the redirect URI and appends the response to it', async () => {
      const withQuery = await insertClient(f.deputy, {
        clientId: 'client_with_query',
        name: 'Query App',
        kind: 'registered',
        redirectUris: ['https://q.example/cb?tenant=a%20b'],
      })
      const response = await get(authorizeQuery(withQuery, { code_challenge: null }))
      const location = response.headers.get('location') ?? ''
      expect(location.startsWith('https://q.example/cb?tenant=a%20b&error=invalid_request')).toBe(
        true,
      )
    })
  })

  // `state` comes back in Location, form-encoded: a `!` sent bare is three characters there.
  describe('state is carried back only up to MAX_STATE_LENGTH characters once encoded', () => {
    it('refuses a longer state on a page, redirecting nowhere, and logs why', async () => {
      // 683 bare `!` are 2049 characters once encoded; the raw value is far under the bound.
      const response = await get(authorizeQuery(f.app, { state: '!'.repeat(683) }))
      await expectStopPage(response, /state parameter longer than Deputy returns \(2048/)
      const [event] = await events(f.deputy, 'authorization.refused')
      expect(event?.reason).toBe('state-too-long')
    })

    it('carries a state at the bound back exactly, on an error redirect and on the code', async () => {
      const state = `${'a'.repeat(MAX_STATE_LENGTH - 6)}!!`
      const failed = await get(authorizeQuery(f.app, { state, code_challenge: null }))
      expect(redirected(failed).params.get('error')).toBe('invalid_request')
      expect(redirected(failed).params.get('state')).toBe(state)
      const b = await signedIn(f.deputy)
      const consent = await b.get(`/authorize?${authorizeQuery(f.app, { state })}`)
      const approved = await decide(b, await consent.text(), 'allow')
      expect(redirected(approved).params.get('state')).toBe(state)
      expect(redirected(approved).params.get('code')).toBeTruthy()
    })

    it('over a real socket, a state that fills the request line gets an answer the client can read', async () => {
      const server = await listen(f.deputy, { port: 0, host: '127.0.0.1' })
      try {
        // 5400 bare `!` came back as 16 KB of Location: undici refused the response.
        const query = authorizeQuery(f.app, { state: '!'.repeat(5400), code_challenge: null })
        const response = await fetch(`${server.url}/authorize?${query.replaceAll('%21', '!')}`, {
          redirect: 'manual',
        })
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
        expect(await response.text()).toMatch(/state parameter longer than Deputy returns/)
      } finally {
        await server.shutdown()
      }
    })
  })

  describe('RFC 9700 §4.11.2: a self-registered client is not redirected to before sign-in', () => {
    it('shows the error on a page with a link back, instead of redirecting', async () => {
      const response = await get(authorizeQuery(f.dynamic, { code_challenge: null }))
      expect(response.status).toBe(400)
      expect(response.headers.get('location')).toBeNull()
      const html = await response.text()
      expect(html).toContain('Self-made Agent sent a request Deputy cannot accept')
      expect(html).toContain('Go back to dyn.example')
      expect(html).toContain('href="https://dyn.example/cb?error=invalid_request')
    })

    it('shows prompt=none login_required on a page too', async () => {
      const response = await get(authorizeQuery(f.dynamic, { prompt: 'none' }))
      expect(response.status).toBe(400)
      expect(response.headers.get('location')).toBeNull()
    })

    it('redirects the error once the person is signed in', async () => {
      const b = await signedIn(f.deputy)
      const response = await b.get(
        `/authorize?${authorizeQuery(f.dynamic, { code_challenge: null })}`,
      )
      expect(response.status).toBe(303)
      expect(redirected(response).params.get('error')).toBe('invalid_request')
      expect(redirected(response).params.get('iss')).toBe(ISSUER)
    })
  })

  describe('success: state echoed, iss present, resource bound', () => {
    it('sends a signed-out person to sign-in and back to the request', async () => {
      const b = browser(f.deputy)
      const first = await b.get(`/authorize?${authorizeQuery(f.app)}`)
      const returnTo = new URL(first.headers.get('location') ?? '', ISSUER).searchParams.get(
        'return_to',
      )
      expect(returnTo).toMatch(/^\/authorize\/continue\?request=[A-Za-z0-9_-]{43}$/)
      const signIn = await b.signIn('alice@example.com', 'correct horse battery', returnTo ?? '')
      expect(signIn.headers.get('location')).toBe(returnTo)
      const consent = await b.get(returnTo ?? '')
      expect(consent.status).toBe(200)
      expect(await consent.text()).toContain('Shop Assistant')
    })

    it('uses the default resource when the client sends none, and the one it names otherwise', async () => {
      const b = await signedIn(f.deputy)
      const defaulted = await b.get(`/authorize?${authorizeQuery(f.app)}`)
      expect(await defaulted.text()).toContain(SHOP)

      const named = await b.get(
        `/authorize?${authorizeQuery(f.app, { resource: NOTES, scope: 'notes:read' })}`,
      )
      const html = await named.text()
      expect(html).toContain(NOTES)
      expect(html).toContain('Read your notes.')
    })

    it('echoes state and adds iss to the code redirect; the code is bound to the resource', async () => {
      const b = await signedIn(f.deputy)
      const consent = await b.get(`/authorize?${authorizeQuery(f.app, { state: 'a b&c=d' })}`)
      const html = await consent.text()
      const response = await decide(b, html, 'allow')
      const { base, params } = redirected(response)
      expect(base).toBe('https://app.example/cb')
      expect(params.get('state')).toBe('a b&c=d')
      expect(params.get('iss')).toBe(ISSUER)
      const consumed = await f.deputy.deps.authorizationCodes.consume(params.get('code') ?? '')
      expect(consumed).toMatchObject({
        status: 'ok',
        code: { resource: SHOP, scopes: ['shop:read'] },
      })
    })

    it('leaves state out of the response when the client sent none', async () => {
      const response = await get(authorizeQuery(f.app, { state: null, code_challenge: null }))
      expect(redirected(response).params.has('state')).toBe(false)
      expect(redirected(response).params.get('iss')).toBe(ISSUER)
    })

    it('accepts the request as a POSTed form too', async () => {
      const b = await signedIn(f.deputy)
      const response = await b.request('/authorize', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: authorizeQuery(f.app),
      })
      expect(response.status).toBe(200)
      expect(await response.text()).toContain('Shop Assistant')
    })
  })

  describe('browser protections (RFC 9700 §4.16, §2.6)', () => {
    it("sends frame-ancestors 'none' and X-Frame-Options on the error page", async () => {
      const response = await get(authorizeQuery(f.app, { redirect_uri: 'https://evil.example/' }))
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
      expect(response.headers.get('x-frame-options')).toBe('DENY')
      expect(response.headers.get('referrer-policy')).toBe('no-referrer')
    })

    it('never answers with CORS headers, even to a cross-origin request or preflight', async () => {
      const origin = { Origin: 'https://evil.example' }
      const plain = await get(authorizeQuery(f.app), { headers: origin })
      expect(plain.headers.get('access-control-allow-origin')).toBeNull()
      const preflight = await f.deputy.app.request(`${ISSUER}/authorize`, {
        method: 'OPTIONS',
        headers: { ...origin, 'Access-Control-Request-Method': 'GET' },
      })
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
      expect(preflight.headers.get('access-control-allow-methods')).toBeNull()
    })

    it('marks every authorization response no-store', async () => {
      const response = await get(authorizeQuery(f.app, { code_challenge: null }))
      expect(response.headers.get('cache-control')).toBe('no-store')
    })
  })
})
