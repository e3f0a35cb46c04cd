import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { CookieJar, hiddenField } from '../helpers/sign-in.js'
import {
  ALICE,
  authorizeQuery,
  type Fixture,
  NOTES,
  SHOP,
  startFixture,
} from '../oauth/authorize-fixture.js'

/** What Chromium sends when a person opens an address. */
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'

/** The text of a page's <main>, tags dropped and entities as written. */
function mainText(html: string): string {
  const main = /<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? ''
  return main
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
}

// Issue 10 §7: the pages a newcomer met, over real HTTP on 127.0.0.1.
describe('pages a newcomer tripped over (issue 10 §7)', () => {
  let f: Fixture
  let server: RunningServer
  let origin: string

  beforeAll(async () => {
    f = await startFixture()
    server = await listen(f.deputy, { port: 0, host: '127.0.0.1' })
    origin = `http://127.0.0.1:${server.port}`
  })
  afterAll(async () => {
    await server?.shutdown()
    await f?.deputy.database.dispose()
  })

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${origin}${path}`, { headers, redirect: 'manual' })

  async function signIn(): Promise<CookieJar> {
    const jar = new CookieJar()
    const login = await get('/login')
    jar.store(login)
    const csrf = hiddenField(await login.text(), 'csrf_token')
    const signedIn = await fetch(`${origin}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
      body: new URLSearchParams({ csrf_token: csrf, email: ALICE.email, password: ALICE.password }),
    })
    expect(signedIn.status).toBe(303)
    jar.store(signedIn)
    return jar
  }

  it('the account page links to the person’s agents and has the sign-out form', async () => {
    const jar = await signIn()
    const account = await get('/account', { cookie: jar.header() })
    expect(account.status).toBe(200)
    const html = await account.text()
    expect(html).toMatch(/<a href="\/account\/agents">Your agents<\/a>/)
    expect(html).toMatch(/<form method="post" action="\/logout">/)
    expect(html).toContain(`name="csrf_token"`)
    expect(mainText(html)).toContain('Sign out')
    // The link leads somewhere real: the agents page, for the same session.
    const agents = await get('/account/agents', { cookie: jar.header() })
    expect(agents.status).toBe(200)
    expect(mainText(await agents.text())).toContain('Your agents')
  })

  describe('an error page at /authorize names the client and the value it refused, escaped', () => {
    it('an unregistered redirect URI', async () => {
      const evil = 'https://evil.example/cb?<script>alert(1)</script>&x="y"'
      const response = await get(`/authorize?${authorizeQuery(f.app, { redirect_uri: evil })}`)
      expect(response.status).toBe(400)
      expect(response.headers.get('location')).toBeNull()
      const html = await response.text()
      const text = mainText(html)
      expect(text).toContain('has not registered')
      expect(text).toContain(`App Shop Assistant (client_id ${f.app.clientId})`)
      expect(text).toContain(
        'Refused redirect_uri https://evil.example/cb?&lt;script&gt;alert(1)&lt;/script&gt;&amp;x=&quot;y&quot;',
      )
      expect(html).not.toContain('<script>')
    })

    it('an unknown client_id', async () => {
      const response = await get(
        `/authorize?${authorizeQuery({ clientId: 'nobody<b>', redirectUris: ['https://app.example/cb'] })}`,
      )
      expect(response.status).toBe(400)
      const html = await response.text()
      expect(mainText(html)).toContain('This app is not known to Deputy')
      expect(mainText(html)).toContain('client_id nobody&lt;b&gt;')
      expect(html).not.toContain('<b>')
    })

    it('an unknown resource, for a client nobody vetted (the page before sign-in)', async () => {
      const unknown = 'https://unknown.example/mcp?a=<i>'
      const response = await get(`/authorize?${authorizeQuery(f.dynamic, { resource: unknown })}`)
      expect(response.status).toBe(400)
      const html = await response.text()
      const text = mainText(html)
      expect(text).toContain(
        'Self-made Agent sent a request Deputy cannot accept: the requested resource is unknown (invalid_target).',
      )
      expect(text).toContain('App Self-made Agent (client_id dyn_selfmade)')
      expect(text).toContain('Refused resource https://unknown.example/mcp?a=&lt;i&gt;')
      expect(html).not.toContain('<i>')
    })

    it('a scope the resource does not offer', async () => {
      const response = await get(
        `/authorize?${authorizeQuery(f.dynamic, { resource: NOTES, scope: 'notes:read shop:order' })}`,
      )
      expect(response.status).toBe(400)
      const text = mainText(await response.text())
      expect(text).toContain('scope shop:order is not offered here (invalid_scope)')
      expect(text).toContain('Refused scope notes:read shop:order')
    })

    it('a very long value is cut, not repeated in full', async () => {
      const long = `https://evil.example/${'a'.repeat(2000)}`
      const response = await get(`/authorize?${authorizeQuery(f.app, { redirect_uri: long })}`)
      const text = mainText(await response.text())
      expect(text).toContain(`Refused redirect_uri ${long.slice(0, 300)}…`)
      expect(text).not.toContain(long.slice(0, 301))
    })

    it('a request without problems still goes to sign-in (no page)', async () => {
      const response = await get(`/authorize?${authorizeQuery(f.app, { resource: SHOP })}`)
      expect(response.status).toBe(303)
    })
  })

  describe('an unknown path', () => {
    it('is an HTML page in Deputy’s look for a browser', async () => {
      const response = await get('/nowhere/<here>', { accept: BROWSER_ACCEPT })
      expect(response.status).toBe(404)
      expect(response.headers.get('content-type')).toMatch(/^text\/html/)
      expect(response.headers.get('vary')).toMatch(/Accept/)
      // The same strict CSP as every page.
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
      const html = await response.text()
      expect(html).toMatch(/^<!doctype html>/)
      expect(html).toContain('<title>Page not found · Deputy</title>')
      expect(html).toContain('href="/assets/')
      expect(mainText(html)).toContain('There is no page at this address.')
      expect(mainText(html)).toContain('Address /nowhere/&lt;here&gt;')
      expect(html).not.toContain('<here>')
    })

    it('is still JSON for API clients (JSON, */* or no Accept at all)', async () => {
      for (const accept of [
        'application/json',
        '*/*',
        undefined,
        'text/html;q=0.5, application/json',
      ]) {
        const response = await get('/nowhere', accept === undefined ? {} : { accept })
        expect(response.status).toBe(404)
        expect(response.headers.get('content-type')).toMatch(/^application\/json/)
        expect(await response.json()).toEqual({
          error: 'not_found',
          message: 'no route for GET /nowhere',
        })
      }
    })
  })

  // Skipped only when Chromium is not installed; the global setup prints that it was skipped.
  describe.skipIf(!hasChromium)('in a real browser (Chromium)', () => {
    let browser: Browser
    let localOrigin: string
    beforeAll(async () => {
      // http://localhost is a secure context, where Chromium keeps the __Host- session cookie.
      localOrigin = `http://localhost:${server.port}`
      browser = await launchChromium()
    })
    afterAll(async () => {
      await browser?.close()
    })

    it('from the account page, "Your agents" opens the agents page and "Sign out" signs out', async () => {
      const context = await browser.newContext()
      const page = await context.newPage()
      await page.goto(`${localOrigin}/login`)
      await Promise.all([page.waitForURL(`${localOrigin}/account`), signInOnPage(page, ALICE)])
      await Promise.all([
        page.waitForURL(`${localOrigin}/account/agents`),
        page.getByRole('link', { name: 'Your agents' }).click(),
      ])
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(
        'Your agents',
      )
      await page.goBack()
      await Promise.all([
        page.waitForURL(/\/login\?signed_out/),
        page.getByRole('button', { name: 'Sign out of this device' }).click(),
      ])
      await context.close()
    })

    it('an unknown address is a styled page, and an error page shows the refused value as text', async () => {
      const context = await browser.newContext()
      const page = await context.newPage()
      const missing = await page.goto(`${localOrigin}/no-such-page`)
      expect(missing?.status()).toBe(404)
      await expect(page.title()).resolves.toBe('Page not found · Deputy')
      // The stylesheet applied under the CSP: <main> is the white card, not an unstyled block.
      const radius = await page.locator('main').evaluate((m) => getComputedStyle(m).borderRadius)
      expect(radius).not.toBe('0px')

      const evil = 'https://evil.example/<img src=x onerror=alert(1)>'
      await page.goto(`${localOrigin}/authorize?${authorizeQuery(f.app, { redirect_uri: evil })}`)
      await expect(page.locator('dl.facts').textContent()).resolves.toContain(evil)
      await expect(page.locator('main img').count()).resolves.toBe(0)
      await context.close()
    })
  })
})
