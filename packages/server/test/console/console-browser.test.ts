import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }
const BOB = { email: 'bob@example.com', password: 'not-an-administrator' }

// Issue 15 §1 in a real browser: the console's access, dashboard, people and clients pages and
// every change they make, at a phone's width and a desktop's, with the axe-core check.
describe.skipIf(!hasChromium)('operator console in Chromium (issue 15 §1)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let browser: Browser
  let docs: DocumentServer
  let origin: string
  let adaId: string
  let cimdId: string

  beforeAll(async () => {
    docs = await startDocumentServer()
    deputy = await startTestDeputy({ config: { dangerouslyAllowHttpLoopbackClientMetadata: true } })
    const { deps } = deputy
    adaId = (await deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM)).id
    await deps.users.create({ ...BOB, name: 'Bob Builder' }, SYSTEM)
    await deps.roles.add({ name: 'support', description: 'Answers customers' }, SYSTEM)
    await deps.clients.register(
      { name: 'Shop Assistant', redirectUris: ['https://shop.example/cb'], public: true },
      SYSTEM,
    )
    await deps.clients.register(
      { name: 'Claude Desktop', redirectUris: ['http://127.0.0.1:9999/cb'], public: true },
      SYSTEM,
      { kind: 'dynamic' },
    )
    cimdId = `${docs.origin}/agents/shirt/client.json`
    docs.routes.set(
      '/agents/shirt/client.json',
      json({
        client_id: cimdId,
        client_name: 'Shirt Agent',
        redirect_uris: ['https://shirt.example/cb'],
      }),
    )
    expect(await deps.clients.resolve(cimdId)).toBeDefined()
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    // localhost is a secure context, so Chromium keeps the __Host- cookies without TLS.
    origin = `http://localhost:${server.port}`
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await server?.shutdown()
    await deputy?.dispose()
    await docs?.close()
  })

  const lastOf = async (type: string) => (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]

  async function signedInAt(
    person: typeof ADA,
    path: string,
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: SIZES[0] })
    const page = await context.newPage()
    await page.goto(`${origin}${path}`)
    // Not signed in: the sign-in page, which brings the person back where they were going.
    expect(new URL(page.url()).pathname).toBe('/login')
    await Promise.all([
      page.waitForURL((url) => url.pathname !== '/login'),
      signInOnPage(page, person),
    ])
    return { context, page }
  }

  // One signed-in administrator and one other person for the whole file; each size resizes them.
  let context: BrowserContext
  let page: Page
  let bob: { context: BrowserContext; page: Page }
  beforeAll(async () => {
    ;({ context, page } = await signedInAt(ADA, '/admin/people?q=ada'))
    expect(new URL(page.url()).search).toBe('?q=ada')
    bob = await signedInAt(BOB, '/admin')
  })
  afterAll(async () => {
    await context?.close()
    await bob?.context.close()
  })

  for (const size of SIZES) {
    describe(`at ${size.width} px (${size.name})`, () => {
      beforeAll(async () => {
        await page.setViewportSize(size)
        await bob.page.setViewportSize(size)
      })

      it('a person without deputy:admin gets the 403 page, not the console', async () => {
        const response = await bob.page.goto(`${origin}/admin`)
        expect(response?.status()).toBe(403)
        await expect(bob.page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(
          'Administrators only',
        )
        await expect(bob.page.getByRole('alert').textContent()).resolves.toContain(
          'does not hold the deputy:admin permission',
        )
        expect(await bob.page.getByRole('navigation', { name: 'Console' }).count()).toBe(0)
      })

      it('the dashboard counts people, clients, tokens and approvals, each linking to its page', async () => {
        if (size.name === 'desktop') {
          // A refused sign-in (a real account, wrong password) is a refusal the dashboard lists.
          const other = await browser.newContext()
          const p = await other.newPage()
          await p.goto(`${origin}/login`)
          await signInOnPage(p, { email: BOB.email, password: 'wrong password entirely' })
          await p.getByRole('alert').waitFor()
          await other.close()
        }
        await page.goto(`${origin}/admin`)
        await expectUsablePage(page)
        const people = page.getByRole('link', { name: /people$/ })
        await expect(people.textContent()).resolves.toMatch(/^\d+ people$/)
        await expect(
          page.getByRole('link', { name: /agents and clients$/ }).textContent(),
        ).resolves.toMatch(/^\d+ agents and clients$/)
        await expect(page.getByRole('link', { name: '0 tokens issued' }).count()).resolves.toBe(1)
        await expect(page.getByRole('link', { name: '0 pending approvals' }).count()).resolves.toBe(
          1,
        )
        const main = (await page.locator('main').textContent()) ?? ''
        if (size.name === 'phone') expect(main).toContain('Nothing has been refused yet.')
        else {
          expect(main).toContain('login.failed')
          expect(main).toContain('wrong-password')
        }
        await Promise.all([page.waitForURL(`${origin}/admin/people`), people.click()])
        await expect(
          page.getByRole('link', { name: 'People', exact: true }).getAttribute('aria-current'),
        ).resolves.toBe('page')
      })

      it('people: add someone, open them, disable and enable, roles, claims, search', async () => {
        const email = `${size.name}@example.com`
        await page.goto(`${origin}/admin/people`)
        await expectUsablePage(page)
        await page.getByLabel('Email', { exact: true }).fill(email)
        await page.getByLabel('Name', { exact: true }).fill(`Tess ${size.name}`)
        await page.getByRole('checkbox', { name: 'support' }).check()
        await Promise.all([
          page.waitForURL(/\/admin\/people\/[^/?]+\?done=created$/),
          page.getByRole('button', { name: 'Add person' }).click(),
        ])
        await expect(page.getByRole('status').textContent()).resolves.toBe('Person added.')
        await expectUsablePage(page)
        await expect(page.locator('main').textContent()).resolves.toContain(
          'No connected accounts.',
        )
        const person = await deputy.deps.users.findByEmail(email)
        expect(person?.roles).toEqual(['support'])
        expect((await lastOf('user.created'))?.actor).toMatchObject({ type: 'user', id: adaId })

        await page.getByRole('button', { name: 'Disable (ends their sessions)' }).click()
        await page.waitForURL(/done=disabled$/)
        expect((await deputy.deps.users.findByEmail(email))?.status).toBe('disabled')
        expect((await lastOf('user.disabled'))?.actor.id).toBe(adaId)
        await page.getByRole('button', { name: 'Enable' }).click()
        await page.waitForURL(/done=enabled$/)
        expect((await deputy.deps.users.findByEmail(email))?.status).toBe('active')

        await page.getByRole('checkbox', { name: 'support' }).uncheck()
        await page.getByRole('checkbox', { name: 'admin' }).check()
        await page.getByRole('button', { name: 'Save roles' }).click()
        await page.waitForURL(/done=roles$/)
        expect((await deputy.deps.users.findByEmail(email))?.roles).toEqual(['admin'])
        expect((await lastOf('user.roles-changed'))?.data).toMatchObject({ roles: ['admin'] })

        await page.getByLabel(/^Claims/).fill('{"favorite_song": "Daisy Bell"}')
        await page.getByRole('button', { name: 'Save claims' }).click()
        await page.waitForURL(/done=claims$/)
        expect((await deputy.deps.users.findByEmail(email))?.claims).toEqual({
          favorite_song: 'Daisy Bell',
        })
        expect((await lastOf('user.claims-changed'))?.actor.id).toBe(adaId)

        await page.goto(`${origin}/admin/people`)
        await page.getByLabel('Search by name or email').fill(size.name)
        await page.getByLabel('Search by name or email').press('Enter')
        await page.waitForURL(/\?q=/)
        const list = page.getByRole('list', { name: 'People' })
        await expect(list.textContent()).resolves.toContain(email)
        await expect(list.textContent()).resolves.not.toContain(BOB.email)
        await page.getByLabel('Search by name or email').fill('nobody-by-this-name')
        await page.getByLabel('Search by name or email').press('Enter')
        await page.waitForURL(/nobody-by-this-name/)
        await expect(page.locator('main').textContent()).resolves.toContain(
          'Nobody matches “nobody-by-this-name”.',
        )
      })

      it('clients: every kind listed, disable and enable, delete only after confirming', async () => {
        const name = `Agent ${size.name}`
        const { client } = await deputy.deps.clients.register(
          { name, redirectUris: ['https://agent.example/cb'], public: true },
          SYSTEM,
        )
        await page.goto(`${origin}/admin/clients`)
        await expectUsablePage(page)
        const list = (await page.getByRole('list', { name: 'Clients' }).textContent()) ?? ''
        expect(list).toContain('Shop Assistant (pre-registered)')
        expect(list).toContain('Claude Desktop (dynamic registration)')
        expect(list).toContain('Shirt Agent (client ID metadata document)')

        // A metadata-document client's id is a URL: its page is one path segment all the same.
        await page.getByRole('link', { name: 'Shirt Agent' }).click()
        await page.waitForURL(`${origin}/admin/clients/${encodeURIComponent(cimdId)}`)
        await expect(page.locator('main').textContent()).resolves.toContain(cimdId)

        await page.goto(`${origin}/admin/clients`)
        await page.getByRole('link', { name, exact: true }).click()
        await page.waitForURL(`${origin}/admin/clients/${encodeURIComponent(client.clientId)}`)
        await expectUsablePage(page)
        await page.getByRole('button', { name: 'Disable (ends its grants)' }).click()
        await page.waitForURL(/done=disabled$/)
        expect((await deputy.deps.clients.get(client.clientId))?.status).toBe('disabled')
        expect((await lastOf('client.disabled'))?.actor.id).toBe(adaId)
        await page.getByRole('button', { name: 'Enable' }).click()
        await page.waitForURL(/done=enabled$/)
        expect((await deputy.deps.clients.get(client.clientId))?.status).toBe('active')
        expect((await lastOf('client.enabled'))?.actor.id).toBe(adaId)

        await page.getByRole('link', { name: 'Delete…' }).click()
        await page.waitForURL(/\/delete$/)
        await expectUsablePage(page)
        await page.getByRole('link', { name: 'Keep it' }).click()
        await page.waitForURL(`${origin}/admin/clients/${encodeURIComponent(client.clientId)}`)
        expect(await deputy.deps.clients.get(client.clientId)).toBeDefined()
        await page.getByRole('link', { name: 'Delete…' }).click()
        await page.getByRole('button', { name: `Delete ${name}` }).click()
        await page.waitForURL(`${origin}/admin/clients?done=deleted`)
        expect(await deputy.deps.clients.get(client.clientId)).toBeUndefined()
        expect((await lastOf('client.deleted'))?.target?.id).toBe(client.clientId)
        expect((await lastOf('client.deleted'))?.actor.id).toBe(adaId)
        await expect(page.getByRole('status').textContent()).resolves.toContain('Client deleted')
      })
    })
  }
})
