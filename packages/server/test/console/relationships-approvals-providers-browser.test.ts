import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }
const RESOURCE = 'https://shop.example/mcp'
const SECRET = 'acme-client-secret-not-shown'

// Issue 15 §1 in a real browser: relationships (browse, write, check with its path, delete), an
// approval's page and the operator's decision, a provider's page (settings, disable/enable, its
// connected accounts, disconnect), each page and change at a phone's width and a desktop's.
describe.skipIf(!hasChromium)(
  'console relationships, approvals and providers in Chromium (issue 15 §1)',
  () => {
    let deputy: TestDeputy
    let server: RunningServer
    let browser: Browser
    let context: BrowserContext
    let page: Page
    let origin: string
    let adaId: string
    let agentId: string

    beforeAll(async () => {
      deputy = await startTestDeputy()
      const { deps } = deputy
      adaId = (await deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM))
        .id
      agentId = (
        await deps.clients.register(
          { name: 'Shop Agent', redirectUris: ['https://agent.example/cb'], public: true },
          SYSTEM,
        )
      ).client.clientId
      await deps.providers.add(
        {
          name: 'acme',
          type: 'oauth2',
          displayName: 'Acme',
          clientId: 'deputy-at-acme',
          clientSecret: SECRET,
          uses: ['connect'],
          scopes: ['read'],
          endpoints: {
            authorization_endpoint: 'https://acme.example/authorize',
            token_endpoint: 'https://acme.example/token',
            userinfo_endpoint: 'https://acme.example/userinfo',
          },
        },
        SYSTEM,
      )
      server = await listen(deputy, { port: 0, host: '127.0.0.1' })
      origin = `http://localhost:${server.port}`
      browser = await launchChromium()
      context = await browser.newContext({ viewport: SIZES[0] })
      page = await context.newPage()
      await page.goto(`${origin}/admin/relationships`)
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/relationships'),
        signInOnPage(page, ADA),
      ])
    })

    afterAll(async () => {
      await context?.close()
      await browser?.close()
      await server?.shutdown()
      await deputy?.dispose()
    })

    const lastOf = async (type: string) =>
      (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]

    async function person(email: string): Promise<string> {
      return (await deputy.deps.users.create({ email, name: email.split('@')[0] ?? email }, SYSTEM))
        .id
    }

    for (const size of SIZES) {
      describe(`at ${size.width} px (${size.name})`, () => {
        beforeAll(async () => {
          await page.setViewportSize(size)
        })

        it('relationships: write tuples, filter them, check with the path, delete one', async () => {
          const group = `group:${size.name}`
          // A long id without a break must wrap on a phone, not widen the page.
          const doc = `doc:${size.name}-plan-${'x'.repeat(120)}`
          await page.goto(`${origin}/admin/relationships`)
          await expect(
            page.getByRole('link', { name: 'Relationships' }).getAttribute('aria-current'),
          ).resolves.toBe('page')
          await expectUsablePage(page)
          for (const [object, relation, subject] of [
            [group, 'member', 'user:ada'],
            [doc, 'viewer', `${group}#member`],
          ]) {
            await page.locator('#write-object').fill(object as string)
            await page.locator('#write-relation').fill(relation as string)
            await page.locator('#write-subject').fill(subject as string)
            await Promise.all([
              page.waitForURL(/done=written$/),
              page.getByRole('button', { name: 'Write tuple' }).click(),
            ])
            await expect(page.getByRole('status').textContent()).resolves.toBe('Tuple written.')
          }
          await expectUsablePage(page)
          const tuples = page.getByRole('list', { name: 'Tuples' }).getByRole('listitem')
          await expect(tuples.count()).resolves.toBe(1)
          await expect(tuples.locator('code').textContent()).resolves.toBe(
            `${doc}#viewer@${group}#member`,
          )
          expect((await lastOf('relationships.written'))?.actor.id).toBe(adaId)

          // A mistake is one line, and nothing is written.
          await page.locator('#write-object').fill('plan')
          await page.locator('#write-relation').fill('viewer')
          await page.locator('#write-subject').fill('user:ada')
          await page.getByRole('button', { name: 'Write tuple' }).click()
          await expect(page.getByRole('alert').textContent()).resolves.toContain(
            'needs a type, as in type:id',
          )
          await expectUsablePage(page)

          await page.goto(`${origin}/admin/relationships`)
          await page.locator('#filter-subject').fill('user:ada')
          await Promise.all([
            page.waitForURL(/subject=user%3Aada/),
            page.getByRole('button', { name: 'Filter' }).click(),
          ])
          const filtered = (await page.getByRole('list', { name: 'Tuples' }).textContent()) ?? ''
          expect(filtered).toContain(`${group}#member@user:ada`)
          expect(filtered).not.toContain('#viewer@')

          await page.locator('#check-object').fill(doc)
          await page.locator('#check-relation').fill('viewer')
          await page.locator('#check-subject').fill('user:ada')
          await Promise.all([
            page.waitForURL(/\/admin\/relationships\/check\?/),
            page.getByRole('button', { name: 'Check', exact: true }).click(),
          ])
          await expectUsablePage(page)
          await expect(page.getByRole('status').textContent()).resolves.toMatch(/^Yes:/)
          await expect(
            page.getByRole('list', { name: 'Through these tuples' }).textContent(),
          ).resolves.toBe(`${group}#member@user:ada${doc}#viewer@${group}#member`)

          await page.goto(`${origin}/admin/relationships?object=${encodeURIComponent(group)}`)
          await Promise.all([
            page.waitForURL(/done=deleted$/),
            page.getByRole('button', { name: `Delete ${group}#member@user:ada` }).click(),
          ])
          await expect(page.getByRole('status').textContent()).resolves.toBe('Tuple deleted.')
          expect((await lastOf('relationships.deleted'))?.actor.id).toBe(adaId)
          await page.goto(
            `${origin}/admin/relationships/check?${new URLSearchParams({ object: doc, relation: 'viewer', subject: 'user:ada' })}`,
          )
          await expect(page.getByRole('status').textContent()).resolves.toMatch(/^No:/)
          await expectUsablePage(page)
        })

        it('approvals: open a request from the list, deny one, approve another', async () => {
          const personId = await person(`${size.name}-buyer@example.com`)
          const ids: string[] = []
          for (const message of [`Buy shirts (${size.name})`, `Buy socks (${size.name})`]) {
            const created = await deputy.deps.approvals.create(
              {
                clientId: agentId,
                userId: personId,
                resource: RESOURCE,
                scopes: [],
                authorizationDetails: [
                  {
                    type: 'tool_call',
                    server: RESOURCE,
                    tool: 'buyMcpShopItem',
                    arguments: { item: message, quantity: 2, note: 'x'.repeat(80) },
                  },
                ],
                bindingMessage: message,
                expiresInSeconds: 600,
                deliveryMode: 'poll',
                notificationToken: null,
              },
              { intervalSeconds: 5, maxPending: 10 },
            )
            ids.push(created?.request.id as string)
          }
          const [deniedId, approvedId] = ids as [string, string]
          await page.goto(`${origin}/admin/approvals`)
          await expectUsablePage(page)
          await Promise.all([
            page.waitForURL(`${origin}/admin/approvals/${deniedId}`),
            page
              .getByRole('listitem')
              .filter({ hasText: `Buy shirts (${size.name})` })
              .getByRole('link')
              .click(),
          ])
          await expectUsablePage(page)
          const main = (await page.locator('main').textContent()) ?? ''
          expect(main).toContain(`Shop Agent asks ${size.name}-buyer@example.com`)
          expect(main).toContain('Run buyMcpShopItem on https://shop.example/mcp')
          await Promise.all([
            page.waitForURL(/done=denied$/),
            page.getByRole('button', { name: 'Deny' }).click(),
          ])
          await expectUsablePage(page)
          expect((await deputy.deps.approvals.byId(deniedId))?.status).toBe('denied')
          expect((await lastOf('approval.denied'))?.actor).toMatchObject({ id: adaId })
          await expect(page.locator('main').textContent()).resolves.toContain(`by ${ADA.email}`)
          expect(await page.getByRole('button', { name: 'Deny' }).count()).toBe(0)

          await page.goto(`${origin}/admin/approvals/${approvedId}`)
          await Promise.all([
            page.waitForURL(/done=approved$/),
            page.getByRole('button', { name: /^Approve for / }).click(),
          ])
          expect((await deputy.deps.approvals.byId(approvedId))?.status).toBe('approved')
          expect((await lastOf('approval.granted'))?.actor).toMatchObject({ id: adaId })
        })

        it('providers: open one, save settings, disable and enable, disconnect an account', async () => {
          const email = `${size.name}-connected@example.com`
          const userId = await person(email)
          await deputy.deps.vault.connect(
            {
              userId,
              provider: 'acme',
              tokens: {
                accessToken: 'acme-token-not-shown',
                refreshToken: null,
                expiresAt: null,
                scopes: ['read'],
                idToken: null,
              },
              requestedScopes: ['read'],
              accountSubject: `${size.name}-sub`,
              accountLabel: `${size.name}.acme`,
            },
            SYSTEM,
          )
          await page.goto(`${origin}/admin/providers`)
          await expectUsablePage(page)
          await Promise.all([
            page.waitForURL(`${origin}/admin/providers/acme`),
            page.getByRole('list', { name: 'Providers' }).getByRole('link').first().click(),
          ])
          await expectUsablePage(page)
          expect(await page.content()).not.toContain(SECRET)
          expect(await page.content()).not.toContain('acme-token-not-shown')
          const accounts = page.getByRole('list', { name: 'Connected accounts' })
          await expect(accounts.textContent()).resolves.toContain(`${email} as ${size.name}.acme`)

          const shown = `Acme ${size.name}`
          await page.getByLabel(/^Display name/).fill(shown)
          await page.getByLabel(/^Scopes/).fill(`read ${size.name}`)
          await page.getByLabel(/^New client secret/).fill(`secret-${size.name}`)
          await Promise.all([
            page.waitForURL(/done=saved$/),
            page.getByRole('button', { name: 'Save settings' }).click(),
          ])
          await expectUsablePage(page)
          await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(shown)
          // Write-only: the field is empty again, and the secret is nowhere on the page.
          await expect(page.getByLabel(/^New client secret/).inputValue()).resolves.toBe('')
          expect(await page.content()).not.toContain(`secret-${size.name}`)
          expect((await deputy.deps.providers.get('acme'))?.scopes).toEqual(['read', size.name])
          expect((await lastOf('provider.updated'))?.actor.id).toBe(adaId)

          await Promise.all([
            page.waitForURL(/done=disabled$/),
            page.getByRole('button', { name: 'Disable (no sign-in or connecting)' }).click(),
          ])
          expect((await deputy.deps.providers.get('acme'))?.status).toBe('disabled')
          await Promise.all([
            page.waitForURL(/done=enabled$/),
            page.getByRole('button', { name: 'Enable' }).click(),
          ])
          expect((await deputy.deps.providers.get('acme'))?.status).toBe('active')

          await Promise.all([
            page.waitForURL(/done=disconnected$/),
            page.getByRole('button', { name: `Disconnect ${email}` }).click(),
          ])
          await expectUsablePage(page)
          expect(await deputy.deps.vault.get(userId, 'acme')).toBeNull()
          expect((await lastOf('connection.removed'))?.actor.id).toBe(adaId)
          await expect(page.locator('main').textContent()).resolves.not.toContain(email)
        })
      })
    }
  },
)
