import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import { sha256 } from '../../src/lib/random.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }
const SHOP = 'https://shop.example/mcp'

// Issue 15 §2 in a real browser: the account page (profile, sessions) and "your agents" (use,
// agreed consent, revoke), at a phone's width and a desktop's, with the axe-core check, no
// sideways scrolling and a visible keyboard focus; every action done by clicking as a person.
describe.skipIf(!hasChromium)('the person’s pages in Chromium (issue 15 §2)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser
  let origin: string
  let adaId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    const { deps } = deputy
    adaId = (await deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM)).id
    await deps.resources.put(
      {
        uri: SHOP,
        name: 'Example Shop',
        scopes: {
          'shop:read': 'See your past orders.',
          'shop:order': 'Place orders in your name.',
        },
      },
      SYSTEM,
    )
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    origin = `http://localhost:${server.port}`
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await server?.shutdown()
    await deputy?.dispose()
  })

  const lastOf = async (type: string) => (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]

  async function signedIn(
    size: (typeof SIZES)[number],
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: size })
    const page = await context.newPage()
    await page.goto(`${origin}/account`)
    await Promise.all([page.waitForURL(`${origin}/account`), signInOnPage(page, ADA)])
    return { context, page }
  }

  /** An agent holding a grant for Ada, used once. */
  async function agentWithGrant(name: string): Promise<void> {
    const { deps } = deputy
    const { client } = await deps.clients.register(
      { name, redirectUris: ['https://agent.example/cb'], public: true },
      SYSTEM,
    )
    const grant = await deps.grants.create({
      userId: adaId,
      clientId: client.clientId,
      resource: SHOP,
      scopes: ['shop:read'],
      agreedText: [{ scope: 'shop:read', sentence: 'See your past orders.' }],
    })
    await deps.grants.recordUse(grant.id)
  }

  for (const size of SIZES) {
    describe(`at ${size.width} px (${size.name})`, () => {
      let here: { context: BrowserContext; page: Page }
      beforeAll(async () => {
        here = await signedIn(size)
      })
      afterAll(async () => {
        await here?.context.close()
      })

      it('the account page is usable, marks this device and links to the console for an admin', async () => {
        const { page } = here
        await page.goto(`${origin}/account`)
        await expectUsablePage(page)
        const nav = page.getByRole('navigation', { name: 'Your account' })
        await expect(
          nav.getByRole('link', { name: 'Account', exact: true }).getAttribute('aria-current'),
        ).resolves.toBe('page')
        const mine = page.locator('ul.sessions li', { hasText: 'This device' })
        await expect(mine.count()).resolves.toBe(1)
        await expect(mine.textContent()).resolves.toContain('Headless Chrome on Linux')
        await expect(page.getByRole('link', { name: 'Open the console' }).count()).resolves.toBe(1)
      })

      it('renames the person from the keyboard, audited', async () => {
        const { page } = here
        await page.goto(`${origin}/account`)
        await page.getByLabel(/Your name/).fill(`Ada ${size.name}`)
        await Promise.all([
          page.waitForURL(/done=renamed/),
          page.getByLabel(/Your name/).press('Enter'),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toBe('Your name was changed.')
        await expect(page.locator('dd').first().textContent()).resolves.toBe(`Ada ${size.name}`)
        await expectUsablePage(page)
        const event = await lastOf('user.renamed')
        expect(event?.actor).toMatchObject({ type: 'user', id: adaId })
      })

      it('“Sign out” on another session ends it: that browser’s next page is the sign-in page', async () => {
        const other = await signedIn(size)
        const { page } = here
        await page.goto(`${origin}/account`)
        // The other browser's session, found by its handle: its cookie's hash, as the page names it.
        const cookie = (await other.context.cookies(origin)).find((c) => c.name === SESSION_COOKIE)
        const handle = sha256(cookie?.value ?? '').slice(0, 16)
        const item = page.locator(`ul.sessions li[data-session="${handle}"]`)
        await expect(item.textContent()).resolves.not.toContain('This device')
        await Promise.all([
          page.waitForURL(/done=signed-out/),
          item.getByRole('button', { name: /^Sign out Headless Chrome on Linux, since / }).click(),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toBe(
          'That session was signed out.',
        )
        await expectUsablePage(page)
        await expect(item.count()).resolves.toBe(0)
        await other.page.goto(`${origin}/account`)
        expect(new URL(other.page.url()).pathname).toBe('/login')
        await other.context.close()
      })

      it('“Sign out everywhere else” ends every other session and keeps this one', async () => {
        const a = await signedIn(size)
        const b = await signedIn(size)
        const { page } = here
        await page.goto(`${origin}/account`)
        await Promise.all([
          page.waitForURL(/done=signed-out-others/),
          page.getByRole('button', { name: 'Sign out everywhere else' }).click(),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toBe(
          'Every other session was signed out.',
        )
        await expect(page.locator('ul.sessions li').count()).resolves.toBe(1)
        await expectUsablePage(page)
        for (const other of [a, b]) {
          await other.page.goto(`${origin}/account`)
          expect(new URL(other.page.url()).pathname).toBe('/login')
          await other.context.close()
        }
        const event = await lastOf('session.ended')
        expect(event).toMatchObject({ reason: 'signed out everywhere else' })
        expect(event?.actor).toMatchObject({ type: 'user', id: adaId })
      })

      it('your agents shows use and the consent agreed to, is usable, and Revoke ends the agent', async () => {
        const name = `Agent ${size.name}`
        await agentWithGrant(name)
        const { page } = here
        await page.goto(`${origin}/account/agents`)
        await expectUsablePage(page)
        const section = page.getByRole('region', { name })
        await expect(section.textContent()).resolves.toMatch(/First used .* · last used /)
        await expect(section.locator('blockquote.agreed').textContent()).resolves.toContain(
          `allow ${name} to`,
        )
        await Promise.all([
          page.waitForURL(/revoked=/),
          section.getByRole('button', { name: `Revoke ${name}` }).click(),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toBe(
          `${name} no longer has access.`,
        )
        await expect(page.getByRole('region', { name }).count()).resolves.toBe(0)
        await expectUsablePage(page)
      })
    })
  }
})
