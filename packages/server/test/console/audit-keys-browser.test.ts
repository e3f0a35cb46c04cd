import { readFileSync } from 'node:fs'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { listen, type RunningServer } from '../../src/server.js'
import { hasChromium, launchChromium, signInOnPage } from '../helpers/chromium.js'
import { expectUsablePage, SIZES } from '../helpers/console.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843' }

// Issue 15 §1 in a real browser: the audit timeline (filters, chain verification, export), the
// signing keys (list, rotate) and the approvals list, at a phone's width and a desktop's.
describe.skipIf(!hasChromium)(
  'console audit, keys, approvals, resources and providers in Chromium (issue 15 §1)',
  () => {
    let deputy: TestDeputy
    let server: RunningServer
    let browser: Browser
    let context: BrowserContext
    let page: Page
    let origin: string
    let adaId: string
    let carolId: string
    let clientId: string

    beforeAll(async () => {
      deputy = await startTestDeputy()
      const { deps } = deputy
      adaId = (await deps.users.create({ ...ADA, name: 'Ada Lovelace', roles: ['admin'] }, SYSTEM))
        .id
      carolId = (await deps.users.create({ email: 'carol@example.com', name: 'Carol' }, SYSTEM)).id
      await deps.users.setClaims('carol@example.com', { team: 'red' }, SYSTEM)
      const { client } = await deps.clients.register(
        {
          name: 'Trading Agent',
          grantTypes: ['urn:openid:params:grant-type:ciba'],
          backchannelTokenDeliveryMode: 'poll',
        },
        SYSTEM,
      )
      clientId = client.clientId
      await deps.approvals.create(
        {
          clientId,
          userId: carolId,
          resource: 'http://localhost:8080/mcp',
          scopes: ['trade'],
          authorizationDetails: [],
          bindingMessage: 'BUY 10 ACME',
          expiresInSeconds: 600,
          deliveryMode: 'poll',
          notificationToken: null,
        },
        { intervalSeconds: 5, maxPending: 5 },
      )
      await deps.resources.put(
        {
          uri: 'http://localhost:8080/mcp',
          name: 'Trading',
          scopes: { trade: 'Buy and sell stocks for you' },
          claimsTemplate: ['email'],
          isDefault: true,
        },
        SYSTEM,
      )
      await deps.providers.add(
        {
          name: 'github',
          type: 'github',
          clientId: 'Iv1.console-test',
          clientSecret: 'not-shown-anywhere',
          uses: ['sign-in', 'connect'],
        },
        SYSTEM,
      )
      await deps.vault.connect(
        {
          userId: carolId,
          provider: 'github',
          tokens: {
            accessToken: 'gho_never_shown',
            refreshToken: null,
            expiresAt: null,
            scopes: ['repo'],
            idToken: null,
          },
          requestedScopes: ['repo'],
          accountSubject: '42',
          accountLabel: 'carol-gh',
        },
        SYSTEM,
      )
      server = await listen(deputy, { port: 0, host: '127.0.0.1' })
      origin = `http://localhost:${server.port}`
      browser = await launchChromium()
      context = await browser.newContext({ viewport: SIZES[0], acceptDownloads: true })
      page = await context.newPage()
      await page.goto(`${origin}/admin/audit`)
      await Promise.all([page.waitForURL(`${origin}/admin/audit`), signInOnPage(page, ADA)])
    })

    afterAll(async () => {
      await context?.close()
      await browser?.close()
      await server?.shutdown()
      await deputy?.dispose()
    })

    for (const size of SIZES) {
      describe(`at ${size.width} px (${size.name})`, () => {
        beforeAll(() => page.setViewportSize(size))

        it('the audit log filters by person, agent, type and time, newest first', async () => {
          await page.goto(`${origin}/admin/audit`)
          await expectUsablePage(page)
          await page.getByLabel('Person (email or id)').fill('carol@example.com')
          await page.getByLabel('Event type').fill('user.claims-changed')
          await Promise.all([
            page.waitForURL(/person=/),
            page.getByRole('button', { name: 'Filter' }).click(),
          ])
          await expectUsablePage(page)
          const records = page.getByRole('list', { name: 'Audit records' }).getByRole('listitem')
          expect(await records.count()).toBe(1)
          await expect(records.first().textContent()).resolves.toContain('user.claims-changed')

          // Agent: the records naming the client, here its registration only.
          await page.goto(`${origin}/admin/audit?agent=${encodeURIComponent(clientId)}`)
          await expect(records.first().textContent()).resolves.toContain('client.registered')

          // A time range that ends before anything happened holds nothing: the empty state.
          await page.goto(`${origin}/admin/audit`)
          await page.getByLabel('Until (UTC)').fill('2001-01-01T00:00')
          await Promise.all([
            page.waitForURL(/to=2001/),
            page.getByRole('button', { name: 'Filter' }).click(),
          ])
          await expect(page.locator('main').textContent()).resolves.toContain('No record matches.')
          await page.getByLabel('Until (UTC)').fill('')
          await page.getByLabel('From (UTC)').fill('2001-01-01T00:00')
          await page.getByRole('button', { name: 'Filter' }).click()
          await page.waitForURL(/from=2001/)
          expect(await records.count()).toBeGreaterThan(3)

          // An unknown person is said, not silently ignored.
          await page.goto(
            `${origin}/admin/audit?person=${encodeURIComponent('nobody@example.com')}`,
          )
          await expect(page.getByRole('alert').textContent()).resolves.toBe(
            'No person is nobody@example.com.',
          )
        })

        it('verifies the chain on request and exports the filtered records as JSON lines', async () => {
          await page.goto(`${origin}/admin/audit?type=user.created`)
          await page.getByRole('link', { name: 'Verify the chain' }).click()
          await page.waitForURL(/verify=1/)
          await expect(page.getByRole('status').textContent()).resolves.toMatch(
            /^The chain is intact: \d+ records, the newest is #\d+\.$/,
          )
          await expectUsablePage(page)
          const [download] = await Promise.all([
            page.waitForEvent('download'),
            page.getByRole('link', { name: 'Export these records (JSON lines)' }).click(),
          ])
          expect(download.suggestedFilename()).toBe('deputy-audit.jsonl')
          const path = await download.path()
          const lines = readFileSync(path, 'utf8').trim().split('\n')
          const types = lines.map((l) => (JSON.parse(l) as { type: string }).type)
          expect(types).toEqual(['user.created', 'user.created'])
          expect(JSON.parse(lines[0] as string)).toHaveProperty('hash')
        })

        it('signing keys: the active key listed, rotation retires it and is audited', async () => {
          await page.goto(`${origin}/admin/keys`)
          await expectUsablePage(page)
          const before = await deputy.deps.signingKeys.list()
          const active = before.find((k) => k.status === 'active')
          await expect(
            page.getByRole('list', { name: 'Signing keys' }).textContent(),
          ).resolves.toContain(active?.kid)
          await page.getByRole('button', { name: 'Rotate: make a new key sign' }).click()
          await page.waitForURL(/done=rotated$/)
          await expect(page.getByRole('status').textContent()).resolves.toContain('Rotated')
          const after = await deputy.deps.signingKeys.list()
          expect(after).toHaveLength(before.length + 1)
          expect(after.find((k) => k.kid === active?.kid)?.status).toBe('retired')
          const rotated = (
            await tailAudit(deputy.deps.store, { limit: 1, type: 'signing-key.rotated' })
          )[0]
          expect(rotated?.actor).toMatchObject({ type: 'user', id: adaId })
          await expect(
            page.getByRole('list', { name: 'Signing keys' }).textContent(),
          ).resolves.toContain('retired')
        })

        it('resources, providers and a person’s connected accounts are listed (read-only)', async () => {
          await page.goto(`${origin}/admin/resources`)
          await expectUsablePage(page)
          const resources = page.getByRole('list', { name: 'Resources' })
          await expect(resources.textContent()).resolves.toContain(
            'trade: Buy and sell stocks for you',
          )
          await expect(resources.textContent()).resolves.toContain('Claims in its tokens: email')

          await page.getByRole('link', { name: 'Providers' }).click()
          await page.waitForURL(`${origin}/admin/providers`)
          await expectUsablePage(page)
          const providers =
            (await page.getByRole('list', { name: 'Providers' }).textContent()) ?? ''
          expect(providers).toContain('(github)')
          expect(providers).toContain('used for sign-in and connected accounts')
          expect(await page.content()).not.toContain('not-shown-anywhere')

          await page.goto(`${origin}/admin/people/${carolId}`)
          await expectUsablePage(page)
          const connections = page.getByRole('list', { name: 'Connected accounts' })
          await expect(connections.textContent()).resolves.toContain('github carol-gh')
          expect(await page.content()).not.toContain('gho_never_shown')
        })

        it('approvals: the pending request listed with who asks whom, and an empty state', async () => {
          await page.goto(`${origin}/admin/approvals`)
          await expectUsablePage(page)
          const list = page.getByRole('list', { name: 'Approval requests' })
          await expect(list.textContent()).resolves.toContain(
            'Trading Agent asks carol@example.com',
          )
          await expect(list.textContent()).resolves.toContain('BUY 10 ACME')
          await page.getByRole('link', { name: 'denied' }).click()
          await page.waitForURL(/status=denied/)
          await expect(page.locator('main').textContent()).resolves.toContain(
            'No denied approval requests.',
          )
          await page.goto(`${origin}/admin`)
          await expect(
            page.getByRole('link', { name: '1 pending approvals' }).count(),
          ).resolves.toBe(1)
        })
      })
    }
  },
)
