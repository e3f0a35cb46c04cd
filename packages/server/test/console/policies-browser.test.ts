import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES, seriousViolations } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { SHOP, SHOP_POLICIES, seedShop } from '../policy/shop-fixture.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }
const BUY = `${SHOP}#buyMcpShopItem`

/** shop.tools with its condition misspelt (`context.stat`, line 4, column 8), as one might type it. */
const MISSPELT = `@id("shop.tools")
@description("Signed-in people may use the shop's tools.")
permit (principal, action == Deputy::Action::"${BUY}", resource)
when { context.stat has demoMode };
`

/** A valid shop.tools, one per size so each save is a new version. */
function valid(size: string): string {
  return `@id("shop.tools")
@description("Through an agent only (${size}).")
permit (
  principal,
  action in [Deputy::Action::"${BUY}", Deputy::Action::"${SHOP}#getUserInfo"],
  resource
)
when { context has agent };
`
}

// Issue 15 §1, the Policies section in a real browser: the editor validates as one types (the
// problem at its line and column, without submitting), saves, shows the history and the diff,
// simulates what an agent may do and explains a decision, at a phone's width and a desktop's.
describe.skipIf(!hasChromium)('console policies in Chromium (issue 15 §1)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let origin: string
  let adaId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    await seedShop(deputy)
    adaId = (
      await deputy.deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM)
    ).id
    await deputy.deps.policies.put(SHOP_POLICIES, SYSTEM)
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    // localhost is a secure context, so Chromium keeps the __Host- cookies without TLS.
    origin = `http://localhost:${server.port}`
    browser = await launchChromium()
    context = await browser.newContext({ viewport: SIZES[0] })
    page = await context.newPage()
    await page.goto(`${origin}/admin/policies`)
    await Promise.all([
      page.waitForURL((url) => url.pathname !== '/login'),
      signInOnPage(page, ADA),
    ])
  })

  afterAll(async () => {
    await context?.close()
    await browser?.close()
    await server?.shutdown()
    await deputy?.dispose()
  })

  for (const size of SIZES) {
    describe(`at ${size.width} px (${size.name})`, () => {
      beforeAll(async () => {
        await page.setViewportSize(size)
      })

      it('lists the policies and opens one in the editor', async () => {
        await page.goto(`${origin}/admin/policies`)
        await expectUsablePage(page)
        const list = (await page.getByRole('list', { name: 'Policies' }).textContent()) ?? ''
        expect(list).toContain('shop.banned-order')
        await Promise.all([
          page.waitForURL(`${origin}/admin/policies/shop.tools`),
          page.getByRole('link', { name: 'shop.tools', exact: true }).click(),
        ])
        await expectUsablePage(page)
        await expect(page.getByLabel('Cedar policy').inputValue()).resolves.toContain(
          '@id("shop.tools")',
        )
      })

      it('shows a problem at its line and column as one types, without submitting', async () => {
        await page.goto(`${origin}/admin/policies/shop.tools`)
        const stored = await deputy.deps.policies.get('shop.tools')
        const editor = page.getByLabel('Cedar policy')
        await editor.fill(MISSPELT)
        const problems = page.getByRole('list', { name: 'Problems' })
        await problems.getByText(/^Line 4, column 8: /).waitFor()
        await expect(editor.getAttribute('aria-invalid')).resolves.toBe('true')
        const note = page.locator('#policy-problems [data-check]')
        await expect(note.getAttribute('class')).resolves.toBe('alert error')
        expect(page.url()).toBe(`${origin}/admin/policies/shop.tools`)
        expect((await deputy.deps.policies.get('shop.tools'))?.version).toBe(stored?.version)
        expect(await seriousViolations(page)).toEqual([])
        const overflow = await page.evaluate(
          () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
        )
        expect(overflow).toBeLessThanOrEqual(0)

        // Saving it anyway: refused on the server, the text kept, the problem at the same place.
        await Promise.all([
          page.waitForLoadState('load'),
          page.getByRole('button', { name: 'Save policy' }).click(),
        ])
        await problems.getByText(/^Line 4, column 8: /).waitFor()
        await expect(editor.inputValue()).resolves.toBe(MISSPELT)
        expect((await deputy.deps.policies.get('shop.tools'))?.version).toBe(stored?.version)
      })

      it('saves a valid policy, audited with the administrator', async () => {
        await page.goto(`${origin}/admin/policies/shop.tools`)
        const editor = page.getByLabel('Cedar policy')
        await editor.fill(valid(size.name))
        await page.getByText('No problems: the text is valid against the schema.').waitFor()
        await expect(editor.getAttribute('aria-invalid')).resolves.toBeNull()
        await Promise.all([
          page.waitForURL(`${origin}/admin/policies/shop.tools?done=saved`),
          page.getByRole('button', { name: 'Save policy' }).click(),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toContain('Saved')
        await expectUsablePage(page)
        // The store keeps the statement itself, without the line break after it.
        expect((await deputy.deps.policies.get('shop.tools'))?.text).toBe(
          valid(size.name).trimEnd(),
        )
        const [record] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.written' })
        expect(record?.actor).toMatchObject({ type: 'user', id: adaId })
      })

      it('shows the history and the diff from the version before', async () => {
        await page.goto(`${origin}/admin/policies/shop.tools`)
        await Promise.all([
          page.waitForURL(`${origin}/admin/policies/shop.tools/history`),
          page.getByRole('link', { name: 'History' }).click(),
        ])
        await expectUsablePage(page)
        const latest = (await deputy.deps.policies.get('shop.tools'))?.version as number
        const versions = page.getByRole('list', { name: 'Versions' })
        await expect(versions.textContent()).resolves.toContain(`by ${ADA.email}`)
        await Promise.all([
          page.waitForURL(`${origin}/admin/policies/shop.tools/versions/${latest}`),
          versions.getByRole('link', { name: `Version ${latest}`, exact: true }).click(),
        ])
        await expectUsablePage(page)
        const changes = page.getByRole('region', { name: 'Line changes' })
        await expect(changes.locator('ins').allTextContents()).resolves.toContain(
          `+ @description("Through an agent only (${size.name}).")\n`,
        )
        await expect(changes.locator('del').first().textContent()).resolves.toMatch(
          /^− @description\(/,
        )
      })

      it('simulates what an agent may do for a person, per tool, with the explanation', async () => {
        await page.goto(`${origin}/admin/policy/simulate`)
        await expectUsablePage(page)
        await page.getByLabel('Person').selectOption({ label: 'Alice (alice@example.com)' })
        await page.getByLabel('Agent').selectOption({ label: 'Claude' })
        await page.getByLabel('Server (optional)').selectOption(SHOP)
        await Promise.all([
          page.waitForURL(/\/admin\/policy\/simulate\?person=/),
          page.getByRole('button', { name: 'Simulate' }).click(),
        ])
        await expectUsablePage(page)
        const rows = page.getByRole('list', { name: 'Decisions' }).getByRole('listitem')
        await expect(rows.count()).resolves.toBe(2)
        const buy = rows.filter({ hasText: BUY })
        await expect(buy.textContent()).resolves.toContain('Allowed.')
        await expect(buy.getByRole('link', { name: 'shop.tools' }).count()).resolves.toBe(1)
      })

      it('explains one request: the decision and the policies that determined it', async () => {
        await page.goto(`${origin}/admin/policy/explain`)
        await expectUsablePage(page)
        await page
          .getByLabel('Person (principal)')
          .selectOption({ label: 'Alice (alice@example.com)' })
        await page.getByLabel('Agent').selectOption({ label: 'Claude' })
        await page.getByLabel('Action').selectOption(BUY)
        await page.getByLabel('Arguments (JSON, optional)').fill('{"item": "shirt"}')
        await page.getByLabel(/^The person's state/).fill('{"demoMode": "banned"}')
        await Promise.all([
          page.waitForURL(/\/admin\/policy\/explain\?person=/),
          page.getByRole('button', { name: 'Explain' }).click(),
        ])
        await expectUsablePage(page)
        const decision = page.getByRole('region', { name: /^Decision/ })
        await expect(decision.textContent()).resolves.toContain('Denied.')
        await expect(decision.textContent()).resolves.toContain('ABSOLUTELY NOT')
        await decision.getByRole('link', { name: 'shop.banned-order' }).click()
        await page.waitForURL(`${origin}/admin/policies/shop.banned-order`)
        // The form keeps what was asked.
        await page.goBack()
        await expect(page.getByLabel(/^The person's state/).inputValue()).resolves.toBe(
          '{"demoMode": "banned"}',
        )
      })
    })
  }
})
