import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium } from '../helpers/chromium.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type FakeGitHub, startFakeGitHub } from '../helpers/upstream-github.js'
import { startUpstreamProvider, type UpstreamProvider } from '../helpers/upstream-provider.js'
import { freePort } from '../interop/fixture.js'

const ADMIN = { type: 'system', id: 'test' } as const

// Issue 12 §2, in a real browser: the buttons on /login, and a click that goes through the
// provider (a real node-oidc-provider, and the GitHub-shaped fake) back to the account page.
describe.skipIf(!hasChromium)('sign in with a provider in a real browser (Chromium)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser
  let upstream: UpstreamProvider
  let github: FakeGitHub
  let origin: string

  beforeAll(async () => {
    upstream = await startUpstreamProvider()
    github = await startFakeGitHub()
    // The redirect URI the providers send the browser back to is built from the issuer, so the
    // port is chosen first; Chromium keeps __Host- cookies on http://localhost (a secure context).
    const port = await freePort()
    origin = `http://localhost:${port}`
    deputy = await startTestDeputy({
      config: { issuer: origin, dangerouslyAllowHttpLoopbackProviders: true },
    })
    await deputy.deps.providers.add(
      upstream.providerInput({ name: 'corp', displayName: 'Corp SSO', uses: ['sign-in'] }),
      ADMIN,
    )
    await deputy.deps.providers.add(github.providerInput({ uses: ['sign-in'] }), ADMIN)
    server = await listen(deputy, { port, host: '127.0.0.1' })
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await server?.shutdown()
    await deputy?.database.dispose()
    await upstream?.close()
    await github?.close()
  })

  it('shows a button per provider; "Sign in with Corp SSO" goes through the provider to /account', async () => {
    upstream.loginAs = 'alice-sub'
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${origin}/login`)
    const corp = page.getByRole('link', { name: 'Sign in with Corp SSO' })
    await expect(corp.isVisible()).resolves.toBe(true)
    await expect(page.getByRole('link', { name: 'Sign in with GitHub' }).isVisible()).resolves.toBe(
      true,
    )
    await Promise.all([page.waitForURL(`${origin}/account`), corp.click()])
    await expect(page.locator('main').textContent()).resolves.toContain('alice@example.com')
    const session = (await context.cookies(origin)).find((c) => c.name === SESSION_COOKIE)
    expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax' })
    await context.close()
  })

  it('"Sign in with GitHub" keeps return_to through the flow', async () => {
    github.loginAs = 'octocat'
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${origin}/approvals`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await Promise.all([
      page.waitForURL(`${origin}/approvals`),
      page.getByRole('link', { name: 'Sign in with GitHub' }).click(),
    ])
    expect(await deputy.deps.users.findByEmail('octocat@example.com')).toMatchObject({
      claims: { github_login: 'octocat' },
    })
    await context.close()
  })

  it('an unverified email ends on the page that says so', async () => {
    upstream.loginAs = 'mallory-sub'
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${origin}/login`)
    await Promise.all([
      page.waitForURL(/\/login\/corp\/callback/),
      page.getByRole('link', { name: 'Sign in with Corp SSO' }).click(),
    ])
    await expect(page.getByRole('alert').textContent()).resolves.toContain(
      'Corp SSO has not verified your email address',
    )
    await context.close()
  })
})
