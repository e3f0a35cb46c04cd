import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PASSKEY_CHALLENGE_COOKIE } from '../../src/identity/passkeys.js'
import { LOGIN_CSRF_COOKIE } from '../../src/identity/return-to.js'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import type { Client } from '../../src/oauth/clients.js'
import {
  httpBrowser,
  type InboxFixture,
  PASSWORDS,
  startInboxFixture,
  TRANSFER,
} from '../approvals/inbox-fixture.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { hiddenField } from '../helpers/sign-in.js'
import { pkce } from '../oauth/authorize-fixture.js'

// Passkeys in real Chromium (issue 15 §3) with a virtual authenticator from the DevTools
// protocol's WebAuthn domain: register on /account/security, sign in with it on /login in the
// middle of an OAuth authorization, confirm a high-risk approval with it, remove it; and the
// refusals: a removed credential, a replayed challenge, another person's credential, a counter
// that went back, and a sign-in start that writes nothing however often it is asked for.

/** A platform authenticator that holds discoverable credentials and verifies the person. */
async function addAuthenticator(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return cdp
}

/** A context with an authenticator, signed in with the password on /account/security. */
async function signedInAt(
  browser: Browser,
  f: InboxFixture,
  who: 'alice' | 'bob',
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await addAuthenticator(page)
  await page.goto(`${f.origin}/account/security`)
  await Promise.all([
    page.waitForURL(`${f.origin}/account/security`),
    signInOnPage(page, { email: f[who].email, password: PASSWORDS[who] }),
  ])
  return { context, page }
}

/** Adds a passkey named `name` through the security page's form. */
async function addPasskey(page: Page, origin: string, name: string): Promise<void> {
  await page.getByLabel('Name for the new passkey').fill(name)
  await Promise.all([
    page.waitForURL(`${origin}/account/security?added`),
    page.getByRole('button', { name: 'Add a passkey' }).click(),
  ])
}

/** The `data` of the audit records of one type, oldest first. */
async function audited(f: InboxFixture, type: string) {
  const rows = await f.deputy.deps.db
    .selectFrom('audit_events')
    .select(['reason', 'data', 'actor'])
    .where('type', '=', type)
    .orderBy('seq', 'asc')
    .execute()
  return rows.map((r) => ({
    reason: r.reason,
    actor: (JSON.parse(r.actor) as { id: string }).id,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }))
}

let browser: Browser

beforeAll(async () => {
  if (hasChromium) browser = await launchChromium()
}, 60_000)

afterAll(async () => {
  await browser?.close()
})

describe.skipIf(!hasChromium)('passkeys in Chromium (issue 15 §3)', () => {
  let f: InboxFixture
  let callback: Server
  let callbackPort: number
  let agent: Client

  beforeAll(async () => {
    f = await startInboxFixture()
    callback = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`callback received ${req.url}`)
    })
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve))
    callbackPort = (callback.address() as AddressInfo).port
    agent = (
      await f.deputy.deps.clients.register(
        { name: 'Desktop Agent', redirectUris: ['http://127.0.0.1/cb'], public: true },
        { type: 'system', id: 'test' },
      )
    ).client
  }, 60_000)

  afterAll(async () => {
    await new Promise((resolve) => callback?.close(resolve))
    await f?.close()
  })

  it('registers a passkey, signs in with it through an authorization, confirms a high-risk approval, and removes it', async () => {
    const { context, page } = await signedInAt(browser, f, 'alice')
    const csp: string[] = []
    page.on('console', (m) => {
      if (m.text().includes('Content Security Policy')) csp.push(m.text())
    })
    await expect(page.locator('#no-passkeys').textContent()).resolves.toBe(
      'You have no passkeys yet.',
    )
    await addPasskey(page, f.origin, 'Work laptop')
    await expect(page.getByRole('status').textContent()).resolves.toBe('Your passkey was added.')
    const item = page.locator('#passkeys li')
    await expect(item.textContent()).resolves.toMatch(/Work laptop.*Added .* UTC · never used/)
    const [stored] = await f.deputy.deps.passkeys.list(f.alice.id)
    expect(stored?.name).toBe('Work laptop')
    expect((await audited(f, 'passkey.registered')).at(-1)?.data).toEqual({
      credential: stored?.credentialId.slice(0, 16),
      name: 'Work laptop',
    })

    // Signed out, an agent's authorization request sends the browser to the sign-in page, and
    // the passkey alone (no email typed) carries it on to consent and back to the agent.
    await page.goto(`${f.origin}/account`)
    await Promise.all([
      page.waitForURL(/\/login\?signed_out/),
      page.getByRole('button', { name: 'Sign out of this device' }).click(),
    ])
    const redirectUri = `http://127.0.0.1:${callbackPort}/cb`
    const authorize = new URLSearchParams({
      response_type: 'code',
      client_id: agent.clientId,
      redirect_uri: redirectUri,
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      state: 'passkey-state',
      scope: 'stock:trade',
    })
    await page.goto(`${f.origin}/authorize?${authorize}`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await Promise.all([
      page.waitForURL(/\/authorize\/continue\?request=/),
      page.getByRole('button', { name: 'Sign in with a passkey' }).click(),
    ])
    await Promise.all([
      page.waitForURL(`${redirectUri}?**`),
      page.getByRole('button', { name: 'Allow' }).click(),
    ])
    const landed = new URL(page.url())
    expect(landed.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(landed.searchParams.get('state')).toBe('passkey-state')
    expect(landed.searchParams.get('iss')).toBe(f.origin)
    const signedIn = (await audited(f, 'login.succeeded')).at(-1)
    expect(signedIn?.actor).toBe(f.alice.id)
    expect(signedIn?.data).toMatchObject({
      method: 'passkey',
      credential: stored?.credentialId.slice(0, 16),
    })
    const sessions = await f.deputy.deps.db
      .selectFrom('sessions')
      .select('signed_in_with')
      .where('user_id', '=', f.alice.id)
      .execute()
    expect(sessions.map((s) => s.signed_in_with)).toEqual(['passkey'])

    // Minutes later a high-risk request needs confirming: the passkey does it.
    f.advance(6 * 60_000)
    const risky = await f.ask({ authorization_details: JSON.stringify([TRANSFER]) })
    await page.goto(`${f.origin}/approvals/${risky.id}`)
    await expect(page.locator('main').textContent()).resolves.toContain('or use a passkey')
    await Promise.all([
      page.waitForURL(/\/login\?fresh/),
      page.getByRole('button', { name: 'Enter your password to approve' }).click(),
    ])
    await expect(page.getByRole('status').textContent()).resolves.toContain('or use a passkey')
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals/${risky.id}`),
      page.getByRole('button', { name: 'Use a passkey' }).click(),
    ])
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals/${risky.id}`),
      page.getByRole('button', { name: 'Approve' }).click(),
    ])
    await expect(page.locator('h1').textContent()).resolves.toBe('Approved')
    expect((await f.token(risky.authReqId)).status).toBe(200)

    // The page shows when it was last used; Remove takes it away.
    await page.goto(`${f.origin}/account/security`)
    await expect(item.textContent()).resolves.toMatch(/last used .* UTC/)
    await Promise.all([
      page.waitForURL(`${f.origin}/account/security?removed`),
      page.getByRole('button', { name: 'Remove Work laptop' }).click(),
    ])
    await expect(page.locator('#no-passkeys').textContent()).resolves.toBe(
      'You have no passkeys yet.',
    )
    expect(await f.deputy.deps.passkeys.list(f.alice.id)).toEqual([])
    expect((await audited(f, 'passkey.removed')).at(-1)?.data).toMatchObject({
      name: 'Work laptop',
    })

    // The authenticator still holds it, but Deputy no longer knows it: refused, in the page.
    await page.goto(`${f.origin}/account`)
    await Promise.all([
      page.waitForURL(/\/login\?signed_out/),
      page.getByRole('button', { name: 'Sign out of this device' }).click(),
    ])
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toBe(
      'That passkey did not sign you in. Try again.',
    )
    expect(new URL(page.url()).pathname).toBe('/login')
    expect((await audited(f, 'login.failed')).at(-1)).toMatchObject({
      reason: 'unknown-credential',
      data: { method: 'passkey' },
    })
    expect(csp).toEqual([])
    await context.close()
  })

  it('shows no passkey button and keeps the password form where script does not run', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${f.origin}/login`)
    await expect(
      page.getByRole('button', { name: 'Sign in with a passkey' }).count(),
    ).resolves.toBe(0)
    await expect(page.getByRole('button', { name: 'Sign in', exact: true }).count()).resolves.toBe(
      1,
    )
    await context.close()
  })

  it('fits a phone: the security page is no wider than 390 px', async () => {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    })
    const page = await context.newPage()
    await page.goto(`${f.origin}/account/security`)
    await signInOnPage(page, { email: f.bob.email, password: PASSWORDS.bob })
    await page.waitForURL(`${f.origin}/account/security`)
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    expect(width).toBeLessThanOrEqual(390)
    await context.close()
  })
})

// The refusals, over HTTP with the browser's authenticator answering challenges the test asks
// for itself; on SQLite and PostgreSQL.
for (const dialect of DIALECTS) {
  describe.skipIf(!hasChromium || skipDialect(dialect.name))(
    `passkey refusals (${dialect.name})`,
    () => {
      let f: InboxFixture
      let alice: { context: BrowserContext; page: Page }
      let aliceKey: string
      let bobKey: string

      beforeAll(async () => {
        f = await startInboxFixture({ database: await dialect.create() })
        alice = await signedInAt(browser, f, 'alice')
        await addPasskey(alice.page, f.origin, 'Alice phone')
        const bob = await signedInAt(browser, f, 'bob')
        await addPasskey(bob.page, f.origin, 'Bob key')
        await bob.context.close()
        aliceKey = (await f.deputy.deps.passkeys.list(f.alice.id))[0]?.credentialId as string
        bobKey = (await f.deputy.deps.passkeys.list(f.bob.id))[0]?.credentialId as string
      }, 60_000)

      afterAll(async () => {
        await alice?.context.close()
        await f?.close()
      })

      /** A signed-out HTTP client that asked for a sign-in challenge: its options and CSRF secret. */
      async function startSignIn() {
        const client = httpBrowser(f.direct)
        const csrf = hiddenField(await (await client.get('/login')).text(), 'csrf_token')
        const answer = await client.request('/login/passkey/options', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: '{}',
        })
        expect(answer.status).toBe(200)
        const { options } = (await answer.json()) as { options: Record<string, unknown> }
        const challengeCookie = client.jar.cookies.get(PASSKEY_CHALLENGE_COOKIE) as string
        expect(challengeCookie).toBeTruthy()
        const finish = (response: unknown) =>
          client.request('/login/passkey', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
            body: JSON.stringify({ response, return_to: '/account' }),
          })
        return { client, csrf, options, challengeCookie, finish }
      }

      /** Alice's authenticator answering `options` (on a Deputy page, where the library is). */
      async function answer(options: Record<string, unknown>) {
        await alice.page.goto(`${f.origin}/account/security`)
        return alice.page.evaluate(
          (o) =>
            (
              window as unknown as {
                SimpleWebAuthnBrowser: { startAuthentication(x: unknown): Promise<unknown> }
              }
            ).SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: o }),
          options,
        )
      }

      it('signs in once per challenge: the same answer again is refused (replay)', async () => {
        const attempt = await startSignIn()
        const response = await answer(attempt.options)
        const first = await attempt.finish(response)
        expect(first.status).toBe(200)
        await expect(first.json()).resolves.toEqual({ redirect: '/account' })
        expect(attempt.client.jar.cookies.has(SESSION_COOKIE)).toBe(true)

        // Someone holding the answer and the cookies it was sent with sends it again.
        const replay = httpBrowser(f.direct)
        replay.jar.cookies.set(PASSKEY_CHALLENGE_COOKIE, attempt.challengeCookie)
        replay.jar.cookies.set(LOGIN_CSRF_COOKIE, attempt.csrf)
        const again = await replay.request('/login/passkey', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': attempt.csrf },
          body: JSON.stringify({ response, return_to: '/account' }),
        })
        expect(again.status).toBe(400)
        await expect(again.json()).resolves.toMatchObject({ error: 'passkey_refused' })
        expect(replay.jar.cookies.has(SESSION_COOKIE)).toBe(false)
        expect((await audited(f, 'login.failed')).at(-1)).toMatchObject({
          reason: 'replayed-challenge',
          actor: f.alice.id,
        })
      })

      it('refuses an answer naming another person’s credential, and one whose counter went back', async () => {
        const attempt = await startSignIn()
        const response = (await answer(attempt.options)) as { id: string; rawId: string }
        const swapped = await attempt.finish({ ...response, id: bobKey, rawId: bobKey })
        expect(swapped.status).toBe(400)
        expect((await audited(f, 'login.failed')).at(-1)).toMatchObject({
          reason: 'wrong-user-handle',
          actor: f.bob.id,
        })

        await f.deputy.deps.db
          .updateTable('passkeys')
          .set({ counter: 1_000_000 })
          .where('credential_id', '=', aliceKey)
          .execute()
        const later = await startSignIn()
        const refused = await later.finish(await answer(later.options))
        expect(refused.status).toBe(400)
        const failed = (await audited(f, 'login.failed')).at(-1)
        expect(failed).toMatchObject({ reason: 'assertion-failed', actor: f.alice.id })
        expect(String(failed?.data.problem)).toContain('counter')
        await f.deputy.deps.db
          .updateTable('passkeys')
          .set({ counter: 0 })
          .where('credential_id', '=', aliceKey)
          .execute()
      })

      it('does not let one person remove another’s passkey', async () => {
        const bob = await f.signedIn('bob')
        const page = await (await bob.get('/account/security')).text()
        const csrf = hiddenField(page, 'csrf_token')
        const answer = await bob.post('/account/security/passkeys/remove', {
          csrf_token: csrf,
          credential_id: aliceKey,
        })
        expect(answer.status).toBe(404)
        await expect(answer.text()).resolves.toContain('You have no such passkey')
        expect((await f.deputy.deps.passkeys.list(f.alice.id)).map((p) => p.credentialId)).toEqual([
          aliceKey,
        ])
        // Without the form's CSRF token nothing is removed either, even one's own.
        const forged = await bob.post('/account/security/passkeys/remove', {
          credential_id: bobKey,
        })
        expect(forged.status).toBe(403)
        expect(await f.deputy.deps.passkeys.list(f.bob.id)).toHaveLength(1)
      })

      it('writes no row for a sign-in start, and summarises a flood of made-up answers', async () => {
        const rows = async () =>
          Number(
            (
              await f.deputy.deps.db
                .selectFrom('passkey_challenges')
                .select((eb) => eb.fn.countAll<number>().as('n'))
                .executeTakeFirst()
            )?.n,
          )
        const before = await rows()
        const attempt = await startSignIn()
        for (let i = 0; i < 30; i++) {
          const again = await attempt.client.request('/login/passkey/options', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-csrf-token': attempt.csrf },
            body: '{}',
          })
          expect(again.status).toBe(200)
        }
        expect(await rows()).toBe(before)

        const failures = (await audited(f, 'login.failed')).length
        const madeUp = {
          id: 'bm90LWEtcmVhbC1jcmVkZW50aWFs',
          rawId: 'bm90LWEtcmVhbC1jcmVkZW50aWFs',
          type: 'public-key',
          clientExtensionResults: {},
          response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' },
        }
        for (let i = 0; i < 20; i++) {
          const next = await startSignIn()
          expect((await next.finish(madeUp)).status).toBe(400)
        }
        // The first of its kind in full; the rest counted into one summary later.
        expect((await audited(f, 'login.failed')).length).toBeLessThanOrEqual(failures + 1)

        // Without the sign-in page's CSRF secret there is no challenge at all.
        const bare = await fetch(`${f.direct}/login/passkey/options`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        })
        expect(bare.status).toBe(403)
      })

      it('accepts a registration answer only from the session that asked, and only once', async () => {
        const bob = await f.signedIn('bob')
        const csrf = hiddenField(await (await bob.get('/account/security')).text(), 'csrf_token')
        const json = { 'content-type': 'application/json', 'x-csrf-token': csrf }
        const asked = await bob.request('/account/security/passkeys/options', {
          method: 'POST',
          headers: json,
          body: '{}',
        })
        const { options } = (await asked.json()) as { options: Record<string, unknown> }
        await alice.page.goto(`${f.origin}/account/security`)
        const response = await alice.page.evaluate(
          (o) =>
            (
              window as unknown as {
                SimpleWebAuthnBrowser: { startRegistration(x: unknown): Promise<unknown> }
              }
            ).SimpleWebAuthnBrowser.startRegistration({ optionsJSON: o }),
          options,
        )
        const body = JSON.stringify({ name: 'Second key', response })

        // Another session (Alice's) cannot use the challenge Bob's session was given.
        const other = await f.signedIn('alice')
        const otherCsrf = hiddenField(
          await (await other.get('/account/security')).text(),
          'csrf_token',
        )
        const foreign = await other.request('/account/security/passkeys', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': otherCsrf },
          body,
        })
        expect(foreign.status).toBe(400)
        expect(await f.deputy.deps.passkeys.list(f.alice.id)).toHaveLength(1)

        const added = await bob.request('/account/security/passkeys', {
          method: 'POST',
          headers: json,
          body,
        })
        expect(added.status).toBe(201)
        const again = await bob.request('/account/security/passkeys', {
          method: 'POST',
          headers: json,
          body,
        })
        expect(again.status).toBe(400)
        await expect(again.json()).resolves.toMatchObject({
          message: 'This passkey request has expired. Try again.',
        })
        expect(await f.deputy.deps.passkeys.list(f.bob.id)).toHaveLength(2)
      })

      it('refuses a registration without the session’s CSRF header', async () => {
        const bob = await f.signedIn('bob')
        const answer = await bob.request('/account/security/passkeys/options', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        })
        expect(answer.status).toBe(403)
        await expect(answer.json()).resolves.toMatchObject({ error: 'csrf_token_invalid' })
      })
    },
  )
}
