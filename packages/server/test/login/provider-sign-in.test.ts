import { decodeJwt } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import { PROVIDER_SIGN_IN_COOKIE } from '../../src/providers/sign-in-routes.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, formBody, parseForms } from '../helpers/sign-in.js'
import { type FakeGitHub, followGitHubLogin, startFakeGitHub } from '../helpers/upstream-github.js'
import {
  followUpstreamLogin,
  startUpstreamProvider,
  type UpstreamProvider,
} from '../helpers/upstream-provider.js'
import { pkce } from '../oauth/authorize-fixture.js'

// Issue 12 §2: sign in with an upstream provider. A person is matched by the provider's
// subject, linked by an email the provider verified (never by one it did not), or created just in
// time with the provider's default roles; the flow carries state, PKCE, nonce and RFC 9207 `iss`.

const ADMIN = { type: 'system', id: 'test' } as const
const RESOURCE = 'https://code.example/mcp'
const REDIRECT = 'https://agent.example/cb'

type Client = ReturnType<typeof browser>

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`sign in with a provider (${dialect.name})`, () => {
    let upstream: UpstreamProvider
    let github: FakeGitHub
    let deputy: TestDeputy

    beforeAll(async () => {
      upstream = await startUpstreamProvider()
      github = await startFakeGitHub()
    })
    afterAll(async () => {
      await upstream?.close()
      await github?.close()
    })

    beforeEach(async () => {
      deputy = await startTestDeputy({
        database: await dialect.create(),
        config: { dangerouslyAllowHttpLoopbackProviders: true },
      })
      const { deps } = deputy
      await deps.roles.add({ name: 'staff', description: 'works here' }, ADMIN)
      await deps.providers.add(
        upstream.providerInput({
          name: 'corp',
          displayName: 'Corp SSO',
          uses: ['sign-in'],
          defaultRoles: ['staff'],
        }),
        ADMIN,
      )
      await deps.providers.add(github.providerInput({ uses: ['sign-in', 'connect'] }), ADMIN)
      upstream.loginAs = undefined
      github.loginAs = undefined
    })
    afterEach(() => deputy.dispose())

    const audit = async (type: string) =>
      (
        await deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', type)
          .execute()
      ).map((row) => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> }))
    const count = async (table: 'users' | 'provider_identities' | 'sessions') =>
      Number(
        (
          await deputy.deps.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )

    /** Starts a sign-in at Deputy and follows the provider's pages; returns the callback URL. */
    async function toCallback(b: Client, provider: 'corp' | 'github', returnTo = '/account') {
      const start = await b.get(`/login/${provider}?return_to=${encodeURIComponent(returnTo)}`)
      expect(start.status).toBe(303)
      const location = start.headers.get('location') as string
      return provider === 'github' ? followGitHubLogin(location) : followUpstreamLogin(location)
    }
    const callback = (b: Client, url: URL) => b.get(`${url.pathname}${url.search}`)
    async function signInWith(b: Client, provider: 'corp' | 'github', returnTo?: string) {
      return callback(b, await toCallback(b, provider, returnTo))
    }

    it('the login page offers every active sign-in provider as "Sign in with …"', async () => {
      const html = await (await browser(deputy).get('/login?return_to=%2Fapprovals')).text()
      expect(html).toContain('Sign in with Corp SSO')
      expect(html).toContain('Sign in with GitHub')
      expect(html).toContain('href="/login/corp?return_to=%2Fapprovals"')
      await deputy.deps.providers.setStatus('corp', 'disabled', ADMIN)
      const after = await (await browser(deputy).get('/login')).text()
      expect(after).not.toContain('Corp SSO')
      expect(after).toContain('Sign in with GitHub')
    })

    it('creates a person just in time with the default roles, then matches them by subject', async () => {
      const b = browser(deputy)
      upstream.loginAs = 'alice-sub'
      const first = await signInWith(b, 'corp', '/approvals')
      expect(first.status).toBe(303)
      expect(first.headers.get('location')).toBe('/approvals')
      expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(true)
      expect(b.jar.cookies.has(PROVIDER_SIGN_IN_COOKIE)).toBe(false)
      // The session says how it was signed in: a provider sign-in is not a typed password, so
      // the page that asks for one again (a high-risk approval) offers no provider to skip it.
      const sessions = await deputy.deps.db
        .selectFrom('sessions')
        .select('signed_in_with')
        .execute()
      expect(sessions.map((row) => row.signed_in_with)).toEqual(['provider:corp'])
      const confirm = await (await b.get('/login?fresh')).text()
      expect(confirm).toContain('Enter your password again')
      expect(confirm).not.toContain('Sign in with')
      const alice = await deputy.deps.users.findByEmail('alice@example.com')
      expect(alice).toMatchObject({ name: 'Alice', roles: ['staff'], status: 'active' })
      expect(await deputy.deps.users.passwordHashOf(alice?.id as string)).toBeNull()

      const [created] = await audit('user.created')
      expect(created?.data).toMatchObject({
        email: 'alice@example.com',
        roles: ['staff'],
        provider: 'corp',
      })
      const [linked] = await audit('provider_identity.linked')
      expect(linked?.data).toMatchObject({ provider: 'corp', subject: 'alice-sub', by: 'created' })
      const [succeeded] = await audit('login.succeeded')
      expect(succeeded?.data).toMatchObject({
        method: 'provider',
        provider: 'corp',
        found: 'created',
      })

      // The upstream account changes its email: it is still the same person, by subject.
      const account = upstream.accounts.get('alice-sub')
      if (account) account.email = 'alice@elsewhere.example'
      try {
        const again = browser(deputy)
        expect((await signInWith(again, 'corp')).headers.get('location')).toBe('/account')
        const account = await again.get('/account')
        expect(await account.text()).toContain('alice@example.com')
      } finally {
        if (account) account.email = 'alice@example.com'
      }
      expect(await count('users')).toBe(1)
      expect((await audit('login.succeeded'))[1]?.data).toMatchObject({ found: 'matched' })
      expect(await audit('provider_identity.linked')).toHaveLength(1)
    })

    it('links an existing person by an email the provider verified', async () => {
      const bob = await deputy.deps.users.create(
        { email: 'bob@example.com', name: 'Bob Local', password: 'a long enough password' },
        ADMIN,
      )
      upstream.loginAs = 'bob-sub'
      const response = await signInWith(browser(deputy), 'corp')
      expect(response.status).toBe(303)
      expect(await count('users')).toBe(1)
      const row = await deputy.deps.db
        .selectFrom('provider_identities')
        .selectAll()
        .executeTakeFirstOrThrow()
      expect(row).toMatchObject({ provider: 'corp', subject: 'bob-sub', user_id: bob.id })
      expect((await audit('provider_identity.linked'))[0]?.data).toMatchObject({
        by: 'verified-email',
      })
      // Linking gives no roles: only people created by the sign-in get the defaults.
      expect((await deputy.deps.users.findById(bob.id))?.roles).toEqual([])
    })

    it('refuses an email the provider did not verify: 403, a page saying so, nothing created or linked', async () => {
      await deputy.deps.users.create(
        { email: 'mallory@example.com', name: 'The real Mallory' },
        ADMIN,
      )
      upstream.loginAs = 'mallory-sub'
      const b = browser(deputy)
      const response = await signInWith(b, 'corp')
      expect(response.status).toBe(403)
      const html = await response.text()
      expect(html).toContain('Corp SSO has not verified your email address')
      expect(html).toContain('Nothing was created or linked.')
      expect(html).not.toMatch(/at .*\.ts:\d+/)
      expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
      expect(await count('users')).toBe(1)
      expect(await count('provider_identities')).toBe(0)
      expect(await count('sessions')).toBe(0)
      const [failed] = await audit('login.failed')
      expect(failed).toMatchObject({ reason: 'unverified-email' })
      expect(failed?.data).toMatchObject({
        method: 'provider',
        provider: 'corp',
        subject: 'mallory-sub',
      })
    })

    it('refuses a GitHub account whose primary email is unverified', async () => {
      github.loginAs = 'hubot'
      const response = await signInWith(browser(deputy), 'github')
      expect(response.status).toBe(403)
      expect(await response.text()).toContain('GitHub has not verified your email address')
      expect(await count('users')).toBe(0)
      expect((await audit('login.failed'))[0]?.data).toMatchObject({ provider: 'github' })
    })

    it('a replayed callback is refused, and so is a made-up state', async () => {
      const b = browser(deputy)
      upstream.loginAs = 'alice-sub'
      const start = await b.get('/login/corp')
      const state = b.jar.cookies.get(PROVIDER_SIGN_IN_COOKIE) as string
      const back = await followUpstreamLogin(start.headers.get('location') as string)
      expect((await callback(b, back)).status).toBe(303)
      // The same callback again, with the cookie put back: the flow was taken once.
      const replay = browser(deputy)
      replay.jar.cookies.set(PROVIDER_SIGN_IN_COOKIE, state)
      const replayed = await callback(replay, back)
      expect(replayed.status).toBe(400)
      expect(await replayed.text()).toContain('has expired or was already used')
      expect(replay.jar.cookies.has(SESSION_COOKIE)).toBe(false)

      const madeUp = browser(deputy)
      madeUp.jar.cookies.set(PROVIDER_SIGN_IN_COOKIE, 'made-up')
      const unknown = await madeUp.get('/login/corp/callback?code=x&state=made-up')
      expect(unknown.status).toBe(400)
      const reasons = (await audit('login.failed')).map((e) => e.reason)
      expect(reasons).toEqual(['unknown-state'])
    })

    it('a callback in a browser that did not start the flow is refused (login CSRF)', async () => {
      upstream.loginAs = 'mallory-sub'
      const attacker = browser(deputy)
      const back = await toCallback(attacker, 'corp')
      const victim = browser(deputy)
      const response = await callback(victim, back)
      expect(response.status).toBe(400)
      expect(await response.text()).toContain('was not started in this browser')
      expect(victim.jar.cookies.has(SESSION_COOKIE)).toBe(false)
      expect((await audit('login.failed'))[0]).toMatchObject({ reason: 'state-mismatch' })
    })

    it('refuses an authorization response whose iss is not the provider (RFC 9207)', async () => {
      const b = browser(deputy)
      upstream.loginAs = 'alice-sub'
      const back = await toCallback(b, 'corp')
      expect(back.searchParams.get('iss')).toBe(upstream.issuer)
      back.searchParams.set('iss', 'http://127.0.0.1:1')
      const response = await callback(b, back)
      expect(response.status).toBe(400)
      expect(await response.text()).toContain(
        'did not sign you in, or its answer could not be used',
      )
      expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
      expect(await count('users')).toBe(0)
      const [failed] = await audit('login.failed')
      expect(failed).toMatchObject({ reason: 'provider-error' })
      expect(failed?.data).toMatchObject({ provider: 'corp' })
    })

    it('a refusal at the provider (access_denied) ends on one clear page', async () => {
      upstream.denyNext('access_denied')
      const response = await signInWith(browser(deputy), 'corp')
      expect(response.status).toBe(403)
      expect(await response.text()).toContain('You did not allow the sign-in at Corp SSO')
      expect((await audit('login.failed'))[0]?.data).toMatchObject({
        provider: 'corp',
        code: 'access_denied',
      })
    })

    it('refuses a disabled person, and a provider disabled during the flow', async () => {
      upstream.loginAs = 'alice-sub'
      await signInWith(browser(deputy), 'corp')
      await deputy.deps.users.setStatus('alice@example.com', 'disabled', ADMIN)
      const disabled = await signInWith(browser(deputy), 'corp')
      expect(disabled.status).toBe(403)
      expect(await disabled.text()).toContain('This account is disabled.')

      const b = browser(deputy)
      const back = await toCallback(b, 'corp')
      await deputy.deps.providers.setStatus('corp', 'disabled', ADMIN)
      const off = await callback(b, back)
      expect(off.status).toBe(403)
      expect(await off.text()).toContain('Signing in with Corp SSO is turned off')
      expect((await browser(deputy).get('/login/corp')).status).toBe(403)
      expect((await browser(deputy).get('/login/nobody')).status).toBe(404)
      expect((await audit('login.failed')).map((e) => e.reason)).toEqual([
        'disabled',
        'provider-disabled',
      ])
    })

    it("GitHub's login becomes github_login, in an access token whose resource's claims template lists it", async () => {
      await deputy.deps.resources.put(
        {
          uri: RESOURCE,
          name: 'Code',
          scopes: { 'code:read': 'Read code' },
          claimsTemplate: ['email', 'github_login'],
        },
        ADMIN,
      )
      const { client } = await deputy.deps.clients.register(
        { name: 'Coding Agent', public: true, redirectUris: [REDIRECT] },
        ADMIN,
      )
      const { verifier, challenge } = pkce()
      const b = browser(deputy)
      const authorize = `/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: 'code:read',
        resource: RESOURCE,
        state: 'st',
      })}`
      // Not signed in: /authorize sends the person to /login, and return_to survives the provider.
      const toLogin = await b.get(authorize)
      const returnTo = new URL(
        toLogin.headers.get('location') as string,
        'http://localhost:8080',
      ).searchParams.get('return_to') as string
      github.loginAs = 'octocat'
      const signedIn = await signInWith(b, 'github', returnTo)
      expect(signedIn.headers.get('location')).toBe(returnTo)
      const octocat = await deputy.deps.users.findByEmail('octocat@example.com')
      expect(octocat?.claims).toMatchObject({ github_login: 'octocat', github_id: 583231 })

      const consent = await b.get(returnTo)
      const form = parseForms(await consent.text()).find((f) => f.method === 'post')
      const allow = form?.buttons.find((x) => x.value === 'allow')
      if (!form || !allow) throw new Error('no consent form')
      const decided = await b.request(form.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: formBody(form, {}, allow).toString(),
      })
      const code = new URL(decided.headers.get('location') as string).searchParams.get(
        'code',
      ) as string
      const token = await deputy.app.request('http://localhost:8080/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          client_id: client.clientId,
        }).toString(),
      })
      expect(token.status).toBe(200)
      const claims = decodeJwt(((await token.json()) as { access_token: string }).access_token)
      expect(claims).toMatchObject({
        aud: RESOURCE,
        github_login: 'octocat',
        email: 'octocat@example.com',
      })

      // A renamed GitHub account: the next sign-in refreshes the claim.
      const user = github.users.get('octocat')
      if (!user) throw new Error('no octocat')
      user.login = 'octocat-renamed'
      github.users.set('octocat-renamed', user)
      github.loginAs = 'octocat-renamed'
      try {
        await signInWith(browser(deputy), 'github')
        expect((await deputy.deps.users.findById(octocat?.id as string))?.claims).toMatchObject({
          github_login: 'octocat-renamed',
        })
      } finally {
        user.login = 'octocat'
        github.users.delete('octocat-renamed')
      }
      const identity = await deputy.deps.db
        .selectFrom('provider_identities')
        .selectAll()
        .executeTakeFirstOrThrow()
      expect(identity).toMatchObject({
        provider: 'github',
        subject: '583231',
        user_id: octocat?.id,
      })
      expect(JSON.parse(identity.claims)).toMatchObject({ github_login: 'octocat-renamed' })
    })
  })
}
