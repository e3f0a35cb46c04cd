import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const GRACE = { email: 'grace@example.com', password: 'cobol-and-nanoseconds' }

// Skipped only when Chromium is not installed; the global setup prints that it was skipped.
describe.skipIf(!hasChromium)('sign-in in a real browser (Chromium, issue 2 §5)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser

  beforeAll(async () => {
    deputy = await startTestDeputy()
    await deputy.deps.users.create(
      { ...GRACE, name: 'Grace Hopper' },
      { type: 'system', id: 'test' },
    )
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await server?.shutdown()
    await deputy?.database.dispose()
  })

  // Chromium treats http://localhost as a secure context, so it keeps `Secure` and `__Host-`
  // cookies there without TLS; this proves the cookie settings work for a local first try.
  it('signs in through the form on http://localhost and lands on the account page', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const origin = `http://localhost:${server.port}`
    await page.goto(`${origin}/login`)
    await expect(page.title()).resolves.toContain('Sign in')
    await Promise.all([page.waitForURL(`${origin}/account`), signInOnPage(page, GRACE)])
    await expect(page.locator('main').textContent()).resolves.toContain('Grace Hopper')

    const cookies = await context.cookies(origin)
    const session = cookies.find((c) => c.name === SESSION_COOKIE)
    expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' })

    // The stylesheet loaded under the strict CSP (no inline styles): the button is styled.
    const radius = await page
      .getByRole('button', { name: 'Save name' })
      .evaluate((b) => getComputedStyle(b).borderRadius)
    expect(radius).not.toBe('0px')

    await Promise.all([
      page.waitForURL(/\/login/),
      page.getByRole('button', { name: 'Sign out of this device' }).click(),
    ])
    await expect(page.locator('main').textContent()).resolves.toContain('You have signed out.')
    await page.goto(`${origin}/account`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await context.close()
  })

  it('shows the generic refusal for a wrong password, in the page', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`http://localhost:${server.port}/login`)
    await signInOnPage(page, { email: GRACE.email, password: 'not her password' })
    await expect(page.getByRole('alert').textContent()).resolves.toBe(
      'Email or password is incorrect.',
    )
    await context.close()
  })
})
