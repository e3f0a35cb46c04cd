import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { ALICE, PROVIDER, startVaultFixture, type VaultFixture } from './vault-fixture.js'

// Issue 12 "Shown by": a browser test of the connections page. Real Chromium: from the account
// page to Connected accounts, Connect through the local OpenID provider and back, the connection
// shown with its account and scopes, Disconnect (revoked upstream).
describe.skipIf(!hasChromium)('the connections page in a real browser (Chromium)', () => {
  let f: VaultFixture
  let browser: Browser

  beforeAll(async () => {
    f = await startVaultFixture({ atIssuer: true, upstream: { accessTokenTtl: 600 } })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await f?.close()
  })

  it('connects with the button, shows the connection, and disconnects', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const csp: string[] = []
    page.on('console', (m) => {
      if (m.text().includes('Content Security Policy')) csp.push(m.text())
    })
    await page.goto(`${f.deputy.config.issuer}/account`)
    await signInOnPage(page, ALICE)
    await page.waitForURL('**/account')
    await page.getByRole('link', { name: 'Connected accounts' }).click()
    await page.waitForURL('**/account/connections')
    const main = page.locator('main')
    await expect(main.textContent()).resolves.toContain('No account is connected.')

    await page.getByRole('button', { name: 'Connect Corp' }).click()
    await page.waitForURL(`**/account/connections?connected=${PROVIDER}`)
    const text = await main.textContent()
    expect(text).toContain('Your Corp account is connected.')
    expect(text).toContain('alice@example.com')
    expect(text).toContain('openid')
    expect(text).toContain('connected')
    expect(f.upstream.counts.authorizationCode).toBe(1)

    const revocations = f.upstream.counts.revocation
    await page.getByRole('button', { name: 'Disconnect Corp' }).click()
    await page.waitForURL(`**/account/connections?disconnected=${PROVIDER}`)
    await expect(main.textContent()).resolves.toContain('Your Corp account is disconnected.')
    await expect(main.textContent()).resolves.toContain('No account is connected.')
    expect(f.upstream.counts.revocation).toBeGreaterThan(revocations)
    expect(await f.deputy.deps.vault.get(f.aliceId, PROVIDER)).toBeNull()
    expect(csp).toEqual([])
    await context.close()
  }, 60_000)
})
