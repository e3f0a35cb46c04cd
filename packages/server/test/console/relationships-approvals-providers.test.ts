import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' }
const BOB = { email: 'bob@example.com', password: 'not-an-administrator', name: 'Bob Builder' }
const RESOURCE = 'https://shop.example/mcp'
const SECRET = 'upstream-secret-never-shown'

// Issue 15 §1: relationships, approvals and providers in the console. Each change is a form with
// the session's CSRF token, made through the domain function the admin API and the CLI call,
// audited with the administrator as actor; a refusal is one line and changes nothing.
describe.each(DIALECTS)(
  'console relationships, approvals, providers ($name)',
  ({ name, create }) => {
    let deputy: TestDeputy
    let adaId: string
    let bobId: string
    let agentId: string

    beforeAll(async () => {
      if (skipDialect(name)) return
      deputy = await startTestDeputy({ database: await create() })
      const { deps } = deputy
      adaId = (await deps.users.create({ ...ADA, roles: ['admin'] }, SYSTEM)).id
      bobId = (await deps.users.create(BOB, SYSTEM)).id
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
      await deps.vault.connect(
        {
          userId: bobId,
          provider: 'acme',
          tokens: {
            accessToken: 'acme-access-token-never-shown',
            refreshToken: 'acme-refresh-token-never-shown',
            expiresAt: null,
            scopes: ['read'],
            idToken: null,
          },
          requestedScopes: ['read'],
          accountSubject: 'bob-at-acme',
          accountLabel: 'bob.acme',
        },
        SYSTEM,
      )
    })
    afterAll(async () => {
      await deputy?.dispose()
    })

    async function signedIn(person: { email: string; password: string }) {
      const b = browser(deputy)
      expect((await b.signIn(person.email, person.password)).status).toBe(303)
      const csrf = hiddenField(await (await b.get('/account')).text(), 'csrf_token')
      return { b, csrf }
    }
    const lastOf = async (type: string) =>
      (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]
    const headSeq = async () => (await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq
    const ask = async (bindingMessage: string) => {
      const created = await deputy.deps.approvals.create(
        {
          clientId: agentId,
          userId: bobId,
          resource: RESOURCE,
          scopes: [],
          authorizationDetails: [
            {
              type: 'tool_call',
              server: RESOURCE,
              tool: 'buyMcpShopItem',
              arguments: { item: 'shirt', quantity: 2 },
            },
          ],
          bindingMessage,
          expiresInSeconds: 300,
          deliveryMode: 'poll',
          notificationToken: null,
        },
        { intervalSeconds: 5, maxPending: 10 },
      )
      return created?.request.id as string
    }

    it.skipIf(skipDialect(name))(
      'refuses every new page and change to a person without deputy:admin, and changes nothing',
      async () => {
        const { b, csrf } = await signedIn(BOB)
        const id = await ask('bob cannot decide here')
        for (const path of [
          '/admin/relationships',
          '/admin/relationships/check?object=doc:a&relation=viewer&subject=user:x',
          `/admin/approvals/${id}`,
          '/admin/providers/acme',
        ])
          expect((await b.get(path)).status).toBe(403)
        const before = await headSeq()
        for (const [path, fields] of [
          ['/admin/relationships', { object: 'doc:a', relation: 'viewer', subject: 'user:bob' }],
          ['/admin/relationships/delete', { tuple: 'doc:a#viewer@user:bob' }],
          [`/admin/approvals/${id}/approve`, {}],
          ['/admin/providers/acme', { display_name: 'Bob’s', client_id: 'x' }],
          ['/admin/providers/acme/status', { status: 'disabled' }],
          [`/admin/providers/acme/connections/${bobId}/disconnect`, {}],
        ] as const) {
          const response = await b.post(path, { csrf_token: csrf, ...fields })
          expect(response.status).toBe(403)
        }
        expect(await headSeq()).toBe(before)
        expect((await deputy.deps.approvals.byId(id))?.status).toBe('pending')
        expect((await deputy.deps.providers.get('acme'))?.status).toBe('active')
      },
    )

    it.skipIf(skipDialect(name))(
      'refuses each new change without the CSRF token or with a wrong one',
      async () => {
        const { b, csrf } = await signedIn(ADA)
        const id = await ask('no token, no decision')
        const before = await headSeq()
        for (const [path, fields] of [
          ['/admin/relationships', { object: 'doc:a', relation: 'viewer', subject: 'user:bob' }],
          ['/admin/relationships/delete', { tuple: 'doc:a#viewer@user:bob' }],
          [`/admin/approvals/${id}/deny`, {}],
          [`/admin/approvals/${id}/approve`, {}],
          ['/admin/providers/acme', { display_name: 'Changed', client_id: 'x' }],
          ['/admin/providers/acme/status', { status: 'disabled' }],
          [`/admin/providers/acme/connections/${bobId}/disconnect`, {}],
        ] as const) {
          for (const token of [undefined, `${csrf}x`]) {
            const response = await b.post(path, {
              ...(token !== undefined && { csrf_token: token }),
              ...fields,
            })
            expect(response.status).toBe(403)
            expect(await response.text()).toContain('This form has expired')
          }
        }
        expect(await headSeq()).toBe(before)
        expect(await deputy.deps.relationships.read({ object: { type: 'doc' } })).toEqual([])
        expect((await deputy.deps.approvals.byId(id))?.status).toBe('pending')
        expect(await deputy.deps.vault.get(bobId, 'acme')).not.toBeNull()
      },
    )

    it.skipIf(skipDialect(name))(
      'approvals: the page shows who asks whom for which tool call; the admin denies or approves',
      async () => {
        const { b, csrf } = await signedIn(ADA)
        const denied = await ask('Buy 2 shirts')
        const page = await b.get(`/admin/approvals/${denied}`)
        expect(page.status).toBe(200)
        const text = await page.text()
        expect(text).toContain('Shop Agent asks bob@example.com')
        expect(text).toContain('Buy 2 shirts')
        expect(text).toContain('Run buyMcpShopItem on https://shop.example/mcp')
        expect(text).toContain('&quot;quantity&quot;: 2')
        expect(text).toContain(`action="/admin/approvals/${denied}/deny"`)
        const list = await (await b.get('/admin/approvals')).text()
        expect(list).toContain(`href="/admin/approvals/${denied}"`)

        const deny = await b.post(`/admin/approvals/${denied}/deny`, { csrf_token: csrf })
        expect(deny.status).toBe(303)
        expect(deny.headers.get('location')).toBe(`/admin/approvals/${denied}?done=denied`)
        expect((await deputy.deps.approvals.byId(denied))?.status).toBe('denied')
        const record = await lastOf('approval.denied')
        expect(record?.actor).toEqual({ type: 'user', id: adaId, label: ADA.email })
        expect(record?.onBehalfOf).toEqual({ type: 'user', id: bobId })
        expect(record?.target).toEqual({ type: 'approval', id: denied })
        const decided = await (await b.get(`/admin/approvals/${denied}`)).text()
        expect(decided).toContain(`by ${ADA.email}`)
        expect(decided).not.toContain('/deny"')

        // Decided once: a second decision is refused and changes nothing.
        const twice = await b.post(`/admin/approvals/${denied}/approve`, { csrf_token: csrf })
        expect(twice.status).toBe(409)
        expect(await twice.text()).toContain(`Approval request ${denied} was already denied.`)
        expect((await deputy.deps.approvals.byId(denied))?.status).toBe('denied')

        const approved = await ask('Buy 1 shirt')
        expect(
          (await b.post(`/admin/approvals/${approved}/approve`, { csrf_token: csrf })).status,
        ).toBe(303)
        expect((await deputy.deps.approvals.byId(approved))?.status).toBe('approved')
        expect((await lastOf('approval.granted'))?.actor.id).toBe(adaId)

        expect((await b.get('/admin/approvals/no-such-request')).status).toBe(404)
        const unknown = await b.post('/admin/approvals/no-such-request/deny', { csrf_token: csrf })
        expect(unknown.status).toBe(404)
      },
    )

    it.skipIf(skipDialect(name))(
      'providers: settings saved and audited, the secret write-only, disable and enable',
      async () => {
        const { b, csrf } = await signedIn(ADA)
        const page = await (await b.get('/admin/providers/acme')).text()
        expect(page).toContain('set (sealed; never shown)')
        expect(page).not.toContain(SECRET)
        expect(page).toContain('bob@example.com')
        expect(page).toContain('bob.acme')
        expect(page).not.toContain('never-shown')
        expect((await b.get('/admin/providers')).status).toBe(200)
        expect((await b.get('/admin/providers/nope')).status).toBe(404)

        const save = await b.post('/admin/providers/acme', {
          csrf_token: csrf,
          display_name: 'Acme Cloud',
          client_id: 'deputy-at-acme',
          scopes: 'read write',
          client_secret: 'a-new-secret',
        })
        expect(save.status).toBe(303)
        expect(save.headers.get('location')).toBe('/admin/providers/acme?done=saved')
        const acme = await deputy.deps.providers.get('acme')
        expect(acme?.displayName).toBe('Acme Cloud')
        expect(acme?.scopes).toEqual(['read', 'write'])
        const updated = await lastOf('provider.updated')
        expect(updated?.actor.id).toBe(adaId)
        expect(updated?.data).toMatchObject({ changed: ['clientSecret', 'displayName', 'scopes'] })
        expect(JSON.stringify(updated)).not.toContain('a-new-secret')

        // The same form sent again is no change and no record; spaces are no secret.
        const seq = await headSeq()
        const same = await b.post('/admin/providers/acme', {
          csrf_token: csrf,
          display_name: 'Acme Cloud',
          client_id: 'deputy-at-acme',
          scopes: 'read write',
          client_secret: '   ',
        })
        expect(same.headers.get('location')).toBe('/admin/providers/acme?done=unchanged')
        expect(await headSeq()).toBe(seq)
        expect((await deputy.deps.providers.get('acme'))?.hasClientSecret).toBe(true)

        const both = await b.post('/admin/providers/acme', {
          csrf_token: csrf,
          display_name: 'Acme Cloud',
          client_id: 'deputy-at-acme',
          client_secret: 'x',
          remove_secret: '1',
        })
        expect(both.status).toBe(400)
        const badScope = await b.post('/admin/providers/acme', {
          csrf_token: csrf,
          display_name: 'Acme Cloud',
          client_id: 'deputy-at-acme',
          scopes: 'read "quoted"',
        })
        expect(badScope.status).toBe(400)
        expect((await deputy.deps.providers.get('acme'))?.scopes).toEqual(['read', 'write'])
        // The admin API's bounds hold here too: nothing oversized is stored or audited.
        const before = await headSeq()
        const oversizedForms: Record<string, string>[] = [
          { display_name: 'A'.repeat(201), client_id: 'deputy-at-acme' },
          { display_name: 'Acme Cloud', client_id: 'c'.repeat(501) },
          {
            display_name: 'Acme Cloud',
            client_id: 'deputy-at-acme',
            client_secret: 's'.repeat(4097),
          },
        ]
        for (const oversized of oversizedForms) {
          const res = await b.post('/admin/providers/acme', { csrf_token: csrf, ...oversized })
          expect(res.status).toBe(400)
        }
        expect(await headSeq()).toBe(before)
        expect((await deputy.deps.providers.get('acme'))?.displayName).toBe('Acme Cloud')

        const off = await b.post('/admin/providers/acme/status', {
          csrf_token: csrf,
          status: 'disabled',
        })
        expect(off.headers.get('location')).toBe('/admin/providers/acme?done=disabled')
        expect((await deputy.deps.providers.get('acme'))?.status).toBe('disabled')
        expect((await lastOf('provider.disabled'))?.actor.id).toBe(adaId)
        await b.post('/admin/providers/acme/status', { csrf_token: csrf, status: 'active' })
        expect((await deputy.deps.providers.get('acme'))?.status).toBe('active')
        expect((await lastOf('provider.enabled'))?.actor.id).toBe(adaId)
      },
    )

    it.skipIf(skipDialect(name))(
      'providers: the connections listed most recently used first, never a token',
      async () => {
        const { b } = await signedIn(ADA)
        const { deps } = deputy
        const connect = async (email: string) => {
          const id = (await deps.users.create({ email, name: email }, SYSTEM)).id
          await deps.vault.connect(
            {
              userId: id,
              provider: 'acme',
              tokens: {
                accessToken: `${email}-token-never-shown`,
                refreshToken: null,
                expiresAt: null,
                scopes: ['read'],
                idToken: null,
              },
              requestedScopes: ['read'],
              accountSubject: email,
              accountLabel: null,
            },
            SYSTEM,
          )
          return id
        }
        await connect('carol@example.com')
        const dave = await connect('dave@example.com')
        expect((await deps.vault.accessToken(dave, 'acme')).accessToken).toContain('dave')
        const listed = (await deps.vault.listByProvider('acme', 10)).map((k) => k.userId)
        expect(listed[0]).toBe(dave)
        expect(listed).toHaveLength(3)
        expect(await deps.vault.listByProvider('acme', 1)).toHaveLength(1)
        const page = await (await b.get('/admin/providers/acme')).text()
        const order = ['dave@example.com', 'carol@example.com', 'bob@example.com'].map((e) =>
          page.indexOf(`>${e}</a>`),
        )
        expect(order.every((at) => at > 0)).toBe(true)
        expect(order[0]).toBeLessThan(order[1] as number)
        expect(page).toContain('last used')
        expect(page).not.toContain('never-shown')
      },
    )

    it.skipIf(skipDialect(name))(
      'providers: an operator disconnects a person’s account, audited on their behalf',
      async () => {
        const { b, csrf } = await signedIn(ADA)
        const path = `/admin/providers/acme/connections/${bobId}/disconnect`
        const response = await b.post(path, { csrf_token: csrf })
        expect(response.status).toBe(303)
        expect(response.headers.get('location')).toBe('/admin/providers/acme?done=disconnected')
        expect(await deputy.deps.vault.get(bobId, 'acme')).toBeNull()
        const record = await lastOf('connection.removed')
        expect(record?.actor).toEqual({ type: 'user', id: adaId, label: ADA.email })
        expect(record?.onBehalfOf).toEqual({ type: 'user', id: bobId })
        expect(JSON.stringify(record)).not.toContain('never-shown')
        const gone = await b.post(path, { csrf_token: csrf })
        expect(gone.status).toBe(404)
        expect(await gone.text()).toContain('That person has no acme connection.')
      },
    )
  },
)
