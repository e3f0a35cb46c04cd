import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import {
  ALICE,
  authorizeQuery,
  type Fixture,
  ISSUER,
  SHOP,
  startFixture,
} from './authorize-fixture.js'

// Skipped only when Chromium is not installed; the global setup prints that it was skipped.
describe.skipIf(!hasChromium)('authorization in a real browser (Chromium, issue 3 §2)', () => {
  let f: Fixture
  let server: RunningServer
  let callback: Server
  let callbackPort: number
  let browser: Browser

  beforeAll(async () => {
    f = await startFixture()
    server = await listen(f.deputy, { port: 0, host: '127.0.0.1' })
    // The agent's loopback redirect (RFC 8252 §7.3): a tiny page that shows what it received.
    callback = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`callback received ${req.url}`)
    })
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve))
    callbackPort = (callback.address() as AddressInfo).port
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => callback?.close(resolve))
    await server?.shutdown()
    await f?.deputy.database.dispose()
  })

  const deputyOrigin = () => `http://127.0.0.1:${server.port}`
  const callbackUri = () => `http://127.0.0.1:${callbackPort}/cb`
  const startUrl = (state: string) =>
    `${deputyOrigin()}/authorize?${authorizeQuery(f.native, {
      redirect_uri: callbackUri(),
      scope: 'shop:read shop:order',
      state,
    })}`

  /** CSP violations the page reports; a blocked redirect would show up here. */
  function violations(page: Page): string[] {
    const seen: string[] = []
    page.on('console', (m) => {
      if (m.text().includes('Content Security Policy')) seen.push(m.text())
    })
    return seen
  }

  it('signs in, shows the consent page, and on Allow lands on the loopback redirect with code, state and iss', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const csp = violations(page)
    await page.goto(startUrl('browser-state-1'))
    expect(new URL(page.url()).pathname).toBe('/login')
    await signInOnPage(page, ALICE)

    await page.waitForURL(/\/authorize\/continue\?request=/)
    const main = page.locator('main')
    await expect(main.textContent()).resolves.toContain('Desktop Agent')
    await expect(main.textContent()).resolves.toContain('See your past orders.')
    await expect(main.textContent()).resolves.toContain('Place orders in your name.')
    await expect(main.textContent()).resolves.toContain(`127.0.0.1:${callbackPort}`)

    await Promise.all([
      page.waitForURL(`${callbackUri()}?**`),
      page.getByRole('button', { name: 'Allow' }).click(),
    ])
    const landed = new URL(page.url())
    expect(landed.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(landed.searchParams.get('state')).toBe('browser-state-1')
    expect(landed.searchParams.get('iss')).toBe(ISSUER)
    await expect(page.locator('body').textContent()).resolves.toContain('callback received /cb?')
    expect(csp).toEqual([])
    await context.close()
  })

  it('with consent remembered, signing in again carries the browser straight back to the agent', async () => {
    // Remembered consent on its own, so this test does not lean on the one before.
    const alice = await f.deputy.deps.users.findByEmail(ALICE.email)
    await f.deputy.deps.grants.rememberConsent(alice?.id ?? '', f.native.clientId, SHOP, [
      'shop:read',
      'shop:order',
    ])
    const context = await browser.newContext()
    const page = await context.newPage()
    const csp = violations(page)
    await page.goto(startUrl('browser-state-2'))
    await signInOnPage(page, ALICE)
    // The sign-in form POST is followed by a page, not a cross-origin redirect chain that the
    // login page's form-action 'self' would block.
    await page.waitForURL(`${callbackUri()}?**`)
    const landed = new URL(page.url())
    expect(landed.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(landed.searchParams.get('state')).toBe('browser-state-2')
    expect(landed.searchParams.get('iss')).toBe(ISSUER)
    expect(csp).toEqual([])
    await context.close()
  })
})
