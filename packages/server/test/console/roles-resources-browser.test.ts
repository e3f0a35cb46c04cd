import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }

// Issue 15 §1 in a real browser: the roles and permissions pages and the resource pages, every
// change they make, at a phone's width and a desktop's, with the axe-core check.
describe.skipIf(!hasChromium)('console roles and resources in Chromium (issue 15 §1)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let origin: string
  let adaId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    const { deps } = deputy
    adaId = (await deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM)).id
    await deps.roles.add({ name: 'support', permissions: ['tickets:answer'] }, SYSTEM)
    await deps.users.create({ email: 'bob@example.com', name: 'Bob', roles: ['support'] }, SYSTEM)
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    // localhost is a secure context, so Chromium keeps the __Host- cookies without TLS.
    origin = `http://localhost:${server.port}`
    browser = await launchChromium()
    context = await browser.newContext({ viewport: SIZES[0] })
    page = await context.newPage()
    await page.goto(`${origin}/admin/roles`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await Promise.all([page.waitForURL(`${origin}/admin/roles`), signInOnPage(page, ADA)])
  })

  afterAll(async () => {
    await context?.close()
    await browser?.close()
    await server?.shutdown()
    await deputy?.dispose()
  })

  const lastOf = async (type: string) => (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]
  const notice = () => page.getByRole('status').textContent()
  const submit = async (button: string, url: RegExp | string) => {
    await Promise.all([page.waitForURL(url), page.getByRole('button', { name: button }).click()])
  }

  for (const size of SIZES) {
    describe(`at ${size.width} px (${size.name})`, () => {
      beforeAll(async () => {
        await page.setViewportSize(size)
      })

      it('roles: add a permission and a role, describe it, change its permissions, delete both', async () => {
        const permission = `refunds:${size.name}`
        const role = `billing-${size.name}`
        await page.goto(`${origin}/admin/roles`)
        await expectUsablePage(page)
        await expect(
          page.getByRole('link', { name: 'Roles', exact: true }).getAttribute('aria-current'),
        ).resolves.toBe('page')
        const roles = (await page.getByRole('list', { name: 'Roles' }).textContent()) ?? ''
        expect(roles).toContain('admin (1 person)')
        expect(roles).toContain('support (1 person)')
        expect(roles).toContain('tickets:answer')

        await page.getByLabel(/^Permission name/).fill(permission)
        await page.getByLabel('What it allows (optional)').fill('Refund an order')
        await submit('Add permission', /done=permission-created$/)
        await expect(notice()).resolves.toBe('Permission added.')
        await expect(
          page.getByRole('list', { name: 'Permissions' }).textContent(),
        ).resolves.toContain(`${permission} Refund an order`)

        await page.getByLabel(/^Name/).fill(role)
        await page.getByLabel('Description (optional)').fill('Sends invoices')
        await page.getByRole('checkbox', { name: permission }).check()
        await submit('Add role', new RegExp(`/admin/roles/${role}\\?done=created$`))
        await expect(notice()).resolves.toBe('Role added.')
        await expectUsablePage(page)
        expect(await deputy.deps.roles.find(role)).toMatchObject({
          description: 'Sends invoices',
          permissions: [permission],
        })
        expect((await lastOf('role.created'))?.actor).toMatchObject({ type: 'user', id: adaId })

        await page.getByLabel('What the role is for').fill('Bills customers')
        await submit('Save description', /done=description$/)
        await expect(notice()).resolves.toBe('Description saved.')
        expect((await deputy.deps.roles.find(role))?.description).toBe('Bills customers')

        await page.getByRole('checkbox', { name: permission }).uncheck()
        await page.getByRole('checkbox', { name: 'tickets:answer' }).check()
        await submit('Save permissions', /done=permissions$/)
        expect((await deputy.deps.roles.find(role))?.permissions).toEqual(['tickets:answer'])
        expect((await lastOf('role.permissions-changed'))?.actor.id).toBe(adaId)

        // Deleting asks first; "Keep it" changes nothing.
        await page.getByRole('link', { name: 'Delete…' }).click()
        await page.waitForURL(/\/delete$/)
        await expectUsablePage(page)
        await expect(page.locator('main').textContent()).resolves.toContain(`Nobody holds ${role}.`)
        await page.getByRole('link', { name: 'Keep it' }).click()
        await page.waitForURL(`${origin}/admin/roles/${role}`)
        expect(await deputy.deps.roles.find(role)).toBeDefined()
        await page.getByRole('link', { name: 'Delete…' }).click()
        await submit(`Delete ${role}`, `${origin}/admin/roles?done=deleted`)
        await expect(notice()).resolves.toContain('Role deleted')
        expect(await deputy.deps.roles.find(role)).toBeUndefined()
        expect((await lastOf('role.deleted'))?.actor.id).toBe(adaId)

        // Granted by no role now: it may be deleted; deputy:admin never offers the button.
        expect(await page.getByRole('button', { name: 'Delete deputy:admin' }).count()).toBe(0)
        expect(await page.getByRole('button', { name: 'Delete tickets:answer' }).count()).toBe(0)
        await submit(`Delete ${permission}`, /done=permission-deleted$/)
        await expect(notice()).resolves.toBe('Permission deleted.')
        expect((await deputy.deps.roles.listPermissions()).map((p) => p.name)).not.toContain(
          permission,
        )
        expect((await lastOf('permission.deleted'))?.actor.id).toBe(adaId)

        // The built-in admin role: no delete link, and a note that it keeps deputy:admin.
        await page.goto(`${origin}/admin/roles/admin`)
        await expectUsablePage(page)
        expect(await page.getByRole('link', { name: 'Delete…' }).count()).toBe(0)
        await expect(page.locator('main').textContent()).resolves.toContain(
          'The built-in admin role always keeps deputy:admin.',
        )
      })

      it('resources: add one, edit its scopes and claims, a bad claim and bad JSON are one line', async () => {
        const uri = `https://${size.name}.example/mcp`
        const path = `${origin}/admin/resources/${encodeURIComponent(uri)}`
        await page.goto(`${origin}/admin/resources`)
        await expectUsablePage(page)
        await page.getByLabel(/^URI/).fill(uri)
        await page.getByLabel(/^Name/).fill(`Files ${size.name}`)
        await page.getByLabel('Scope 1 name').fill('files:read')
        await page.getByLabel('Scope 1 consent sentence').fill('Read your files')
        await page.getByLabel(/^Claims in its tokens/).fill('email')
        await submit('Add resource', `${path}?done=created`)
        await expect(notice()).resolves.toBe('Resource added.')
        await expectUsablePage(page)
        expect(await deputy.deps.resources.get(uri)).toMatchObject({
          name: `Files ${size.name}`,
          scopes: { 'files:read': 'Read your files' },
          claimsTemplate: ['email'],
        })
        expect((await lastOf('resource.registered'))?.actor.id).toBe(adaId)

        await page.getByLabel('Scope 1 consent sentence').fill('See your files')
        await page.getByLabel('Scope 2 name').fill('files:write')
        await page.getByLabel('Scope 2 consent sentence').fill('Change your files')
        await page.getByLabel(/^Claims in its tokens/).fill('email, favorite_song')
        await submit('Save resource', `${path}?done=saved`)
        await expect(notice()).resolves.toContain('Saved')
        expect(await deputy.deps.resources.get(uri)).toMatchObject({
          scopes: { 'files:read': 'See your files', 'files:write': 'Change your files' },
          claimsTemplate: ['email', 'favorite_song'],
        })

        // A claim Deputy sets itself is refused in one line, and nothing changes.
        await page.getByLabel(/^Claims in its tokens/).fill('email, sub')
        await page.getByRole('button', { name: 'Save resource' }).click()
        await expect(page.getByRole('alert').textContent()).resolves.toBe(
          'Claim "sub" is set by Deputy in every token and cannot be copied.',
        )
        await expectUsablePage(page)
        expect((await deputy.deps.resources.get(uri))?.claimsTemplate).toEqual([
          'email',
          'favorite_song',
        ])
        await page.getByRole('link', { name: 'Go back' }).click()
        await page.waitForURL(path)

        // Detail types: the built-in one is listed; a schema that is not JSON is one line.
        const types = page.getByRole('list', { name: 'Detail types' })
        await expect(types.textContent()).resolves.toContain('tool_call (built in)')
        await page.getByLabel(/^Type/).fill('refund')
        await page.getByLabel(/^Sentence people read/).fill('Refund {amount} euros')
        await page.getByLabel(/^JSON Schema/).fill('{"type": "object",')
        await page.getByRole('button', { name: 'Save detail type' }).click()
        await expect(page.getByRole('alert').textContent()).resolves.toBe(
          'The schema must be JSON, e.g. {"type": "object"}.',
        )
        await page.getByRole('link', { name: 'Go back' }).click()
        await page.waitForURL(path)
        await page.getByLabel(/^Type/).fill('refund')
        await page.getByLabel(/^Sentence people read/).fill('Refund {amount} euros')
        await page
          .getByLabel(/^JSON Schema/)
          .fill('{"type": "object", "properties": {"amount": {"type": "number"}}}')
        await page.getByRole('checkbox', { name: /^High risk/ }).check()
        await submit('Save detail type', `${path}?done=type-saved`)
        await expect(notice()).resolves.toBe('Detail type saved.')
        await expectUsablePage(page)
        await expect(types.textContent()).resolves.toContain('refundhigh riskRefund {amount} euros')
        expect((await lastOf('authorization-detail-type.registered'))?.actor.id).toBe(adaId)
        await submit('Remove refund', `${path}?done=type-removed`)
        expect((await deputy.deps.detailTypes.list(uri)).map((t) => t.type)).toEqual(['tool_call'])

        await page.getByRole('link', { name: 'All resources' }).click()
        await page.waitForURL(`${origin}/admin/resources`)
        await expect(
          page.getByRole('list', { name: 'Resources' }).textContent(),
        ).resolves.toContain('files:write: Change your files')
      })
    })
  }
})
