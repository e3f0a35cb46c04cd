import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { type InboxFixture, PASSWORDS, startInboxFixture, TRANSFER } from './inbox-fixture.js'

// The approvals inbox in real Chromium at phone and desktop size (issue 11 §3): a request made
// at the real /bc-authorize appears, live updates without reload, Approve and Deny, the fresh
// sign-in of a high-risk request, and the CIBA poll at /token after the decision.

const SIZES = [
  { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
  { name: 'desktop', viewport: { width: 1280, height: 800 }, isMobile: false, hasTouch: false },
] as const

describe.skipIf(!hasChromium)('approvals inbox in Chromium (issue 11 §3)', () => {
  let f: InboxFixture
  let browser: Browser

  beforeAll(async () => {
    f = await startInboxFixture()
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await f?.close()
  })

  /** A signed-in page on the inbox, reached through the sign-in form from /approvals. */
  async function signedInInbox(size: (typeof SIZES)[number]): Promise<{
    context: BrowserContext
    page: Page
  }> {
    const { name: _name, ...options } = size
    const context = await browser.newContext(options)
    const page = await context.newPage()
    await page.goto(`${f.origin}/approvals`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals`),
      signInOnPage(page, { email: f.alice.email, password: PASSWORDS.alice }),
    ])
    return { context, page }
  }

  const item = (page: Page, id: string) => page.locator(`#pending [data-approval="${id}"]`)

  for (const size of SIZES) {
    it(`lists, updates live, approves and denies at ${size.name} size`, async () => {
      const first = await f.ask({ binding_message: `FIRST-${size.name}` })
      const { context, page } = await signedInInbox(size)
      await expect(item(page, first.id).textContent()).resolves.toContain(`FIRST-${size.name}`)
      await expect(item(page, first.id).textContent()).resolves.toContain(
        'Pay 120.00 EUR to ACME Shirts',
      )
      // Usable on a phone: nothing wider than the screen.
      const width = await page.evaluate(() => document.documentElement.scrollWidth)
      expect(width).toBeLessThanOrEqual(size.viewport.width)

      // Live: a new request appears without a reload (the marker survives only without one).
      await page.locator('#live-status', { hasText: 'Live' }).waitFor()
      await page.evaluate(() => {
        ;(window as unknown as { marker: string }).marker = 'same page'
      })
      const second = await f.ask({ binding_message: `SECOND-${size.name}` })
      await item(page, second.id).waitFor()

      // Approve on the request page in a second tab: it leaves the first tab's list by itself.
      const tab = await context.newPage()
      await tab.goto(`${f.origin}/approvals/${first.id}`)
      await expect(tab.locator('h1').textContent()).resolves.toBe('Approve this request?')
      await expect(tab.locator('main').textContent()).resolves.toContain('Trading agent')
      await Promise.all([
        tab.waitForURL(`${f.origin}/approvals/${first.id}`),
        tab.getByRole('button', { name: 'Approve' }).click(),
      ])
      await expect(tab.locator('h1').textContent()).resolves.toBe('Approved')
      await item(page, first.id).waitFor({ state: 'detached' })
      await page.locator(`#history [data-approval="${first.id}"]`).waitFor()
      await expect(
        page.evaluate(() => (window as unknown as { marker?: string }).marker),
      ).resolves.toBe('same page')
      const token = await f.token(first.authReqId)
      expect(token.status).toBe(200)
      expect(token.body.access_token).toEqual(expect.any(String))

      // Deny from the inbox: open it, deny, and the client hears access_denied.
      await Promise.all([
        page.waitForURL(`${f.origin}/approvals/${second.id}`),
        item(page, second.id).getByRole('link').click(),
      ])
      await Promise.all([
        page.waitForURL(`${f.origin}/approvals/${second.id}`),
        page.getByRole('button', { name: 'Deny' }).click(),
      ])
      await expect(page.locator('h1').textContent()).resolves.toBe('Denied')
      expect((await f.token(second.authReqId)).body.error).toBe('access_denied')
      await context.close()
    })
  }

  it('asks a high-risk approver for the password again, brings them back, and then Approve counts (phone)', async () => {
    const { context, page } = await signedInInbox(SIZES[0])
    f.advance(6 * 60_000)
    const risky = await f.ask({ authorization_details: JSON.stringify([TRANSFER]) })
    await page.goto(`${f.origin}/approvals/${risky.id}`)
    await expect(page.locator('main').textContent()).resolves.toContain(
      'Transfer 9000.00 to Mallory Ltd',
    )
    await Promise.all([
      page.waitForURL(/\/login\?fresh/),
      page.getByRole('button', { name: 'Enter your password to approve' }).click(),
    ])
    await expect(page.locator('main').textContent()).resolves.toContain('Enter your password again')
    expect((await f.token(risky.authReqId)).body.error).toBe('authorization_pending')
    await page.getByLabel('Password').fill(PASSWORDS.alice)
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals/${risky.id}`),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ])
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals/${risky.id}`),
      page.getByRole('button', { name: 'Approve' }).click(),
    ])
    await expect(page.locator('h1').textContent()).resolves.toBe('Approved')
    // The client polled once already: the next poll comes after its interval (no slow_down).
    f.advance(2_000)
    const token = await f.token(risky.authReqId)
    expect(token.status).toBe(200)
    await context.close()
  })

  it('works without JavaScript: the list and a reload link', async () => {
    const pending = await f.ask({ binding_message: 'NO-SCRIPT' })
    const context = await browser.newContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${f.origin}/approvals`)
    await Promise.all([
      page.waitForURL(`${f.origin}/approvals`),
      signInOnPage(page, { email: f.alice.email, password: PASSWORDS.alice }),
    ])
    await expect(item(page, pending.id).textContent()).resolves.toContain('NO-SCRIPT')
    await expect(page.locator('#live-status').textContent()).resolves.toContain(
      'Reload to see new requests',
    )
    await expect(page.getByRole('link', { name: 'Reload' }).getAttribute('href')).resolves.toBe(
      '/approvals',
    )
    await context.close()
  })
})
