import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' }
const BOB = { email: 'bob@example.com', password: 'not-an-administrator', name: 'Bob Builder' }
const SHOP = 'https://shop.example/mcp'
const SHOP_PATH = `/admin/resources/${encodeURIComponent(SHOP)}`

// Issue 15 §1: roles, permissions and resources changed in the console go through the same
// domain functions as the admin API and the CLI: validated, audited with the administrator,
// refused without the session's CSRF token, and refused whole when any part is wrong.
describe.each(DIALECTS)('console roles and resources ($name)', ({ name, create }) => {
  let deputy: TestDeputy
  let adaId: string

  beforeAll(async () => {
    if (skipDialect(name)) return
    deputy = await startTestDeputy({ database: await create() })
    const { deps } = deputy
    adaId = (await deps.users.create({ ...ADA, roles: ['admin'] }, SYSTEM)).id
    await deps.roles.add({ name: 'support', permissions: ['tickets:answer'] }, SYSTEM)
    await deps.users.create({ ...BOB, roles: ['support'] }, SYSTEM)
    await deps.resources.put(
      { uri: SHOP, name: 'Shop', scopes: { 'shop:order': 'Order shirts for you' } },
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
    /** Posts a form whose fields may repeat (ticked checkboxes). */
    const send = (path: string, fields: [string, string][]) =>
      b.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams([['csrf_token', csrf], ...fields]).toString(),
      })
    return { b, csrf, send }
  }
  /** A page's text with the entities of its escaped quotes read back. */
  const textOf = async (response: Response) =>
    (await response.text()).replaceAll('&quot;', '"').replaceAll('&#39;', "'")
  const lastOf = async (type: string) => (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]
  const lastSeq = async () => (await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq
  const asAda = () => ({ type: 'user', id: adaId, label: ADA.email })

  /** Every new change, as a path and a form that would succeed with the right token. */
  const CHANGES: [string, Record<string, string>][] = [
    ['/admin/roles', { name: 'sneaky', permission: 'deputy:admin' }],
    ['/admin/roles/support/description', { description: 'Changed' }],
    ['/admin/roles/support/permissions', { permission: 'deputy:admin' }],
    ['/admin/roles/support/delete', { confirm: 'delete' }],
    ['/admin/permissions', { name: 'sneaky:perm' }],
    ['/admin/permissions/tickets:answer/delete', {}],
    ['/admin/resources', { uri: 'https://evil.example/mcp' }],
    [SHOP_PATH, { name: 'Changed', scope_0: '', sentence_0: '' }],
    [`${SHOP_PATH}/detail-types`, { type: 'x', template: 'X', schema: '{"type":"object"}' }],
  ]
  const unchanged = async () => {
    const support = await deputy.deps.roles.find('support')
    expect(support).toMatchObject({ description: '', permissions: ['tickets:answer'] })
    expect(await deputy.deps.roles.find('sneaky')).toBeUndefined()
    expect((await deputy.deps.resources.get(SHOP))?.name).toBe('Shop')
    expect(await deputy.deps.resources.get('https://evil.example/mcp')).toBeUndefined()
    expect(await deputy.deps.detailTypes.list(SHOP)).toHaveLength(1)
  }

  it.skipIf(skipDialect(name))(
    'refuses a person without deputy:admin every new page and change',
    async () => {
      const { b, csrf } = await signedIn(BOB)
      for (const path of ['/admin/roles', '/admin/roles/support', SHOP_PATH]) {
        const page = await b.get(path)
        expect(page.status).toBe(403)
        expect(await page.text()).toContain('does not hold the deputy:admin permission')
      }
      const before = await lastSeq()
      for (const [path, fields] of CHANGES) {
        const response = await b.post(path, { csrf_token: csrf, ...fields })
        expect(response.status, path).toBe(403)
      }
      await unchanged()
      expect(await lastSeq()).toBe(before)
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses every new change without the CSRF token or with another one',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const before = await lastSeq()
      for (const [path, fields] of CHANGES) {
        for (const token of [undefined, `${csrf}x`]) {
          const response = await b.post(path, {
            ...(token !== undefined && { csrf_token: token }),
            ...fields,
          })
          expect(response.status, path).toBe(403)
          expect(await response.text()).toContain('This form has expired')
        }
      }
      await unchanged()
      expect(await lastSeq()).toBe(before)
    },
  )

  it.skipIf(skipDialect(name))(
    'roles: add, describe, grant, delete after confirming, each audited with the administrator',
    async () => {
      const { b, send } = await signedIn(ADA)
      const created = await send('/admin/roles', [
        ['name', 'billing'],
        ['description', 'Sends invoices'],
        ['permission', 'tickets:answer'],
      ])
      expect(created.status).toBe(303)
      expect(created.headers.get('location')).toBe('/admin/roles/billing?done=created')
      expect(await deputy.deps.roles.find('billing')).toMatchObject({
        description: 'Sends invoices',
        permissions: ['tickets:answer'],
      })
      expect((await lastOf('role.created'))?.actor).toEqual(asAda())

      expect((await send('/admin/permissions', [['name', 'invoices:send']])).status).toBe(303)
      expect((await lastOf('permission.created'))?.actor).toEqual(asAda())
      const granted = await send('/admin/roles/billing/permissions', [
        ['permission', 'invoices:send'],
        ['permission', 'tickets:answer'],
      ])
      expect(granted.headers.get('location')).toBe('/admin/roles/billing?done=permissions')
      expect((await deputy.deps.roles.find('billing'))?.permissions).toEqual([
        'invoices:send',
        'tickets:answer',
      ])
      expect((await lastOf('role.permissions-changed'))?.data).toMatchObject({
        permissions: ['invoices:send', 'tickets:answer'],
      })

      await send('/admin/roles/billing/description', [['description', 'Bills customers']])
      expect((await deputy.deps.roles.find('billing'))?.description).toBe('Bills customers')
      expect((await lastOf('role.description-changed'))?.actor).toEqual(asAda())

      const page = await (await b.get('/admin/roles')).text()
      expect(page).toContain('billing</a> <span class="muted">(nobody holds it)</span>')
      expect(page).toContain('support</a> <span class="muted">(1 person)</span>')

      // A permission a role grants is not deleted; once no role grants it, it is.
      const held = await send('/admin/permissions/invoices:send/delete', [])
      expect(held.status).toBe(409)
      expect(await held.text()).toContain(
        'The permission invoices:send is granted by billing: take it from that role first.',
      )
      await send('/admin/roles/billing/permissions', [['permission', 'tickets:answer']])
      expect((await send('/admin/permissions/invoices:send/delete', [])).status).toBe(303)
      expect((await deputy.deps.roles.listPermissions()).map((p) => p.name)).not.toContain(
        'invoices:send',
      )
      expect((await lastOf('permission.deleted'))?.target).toEqual({
        type: 'permission',
        id: 'invoices:send',
      })

      // Deleting needs the confirmation the delete page sends; then holders lose the role.
      await deputy.deps.users.setRoles(BOB.email, ['support', 'billing'], SYSTEM)
      expect((await b.get('/admin/roles/billing/delete')).status).toBe(200)
      expect((await send('/admin/roles/billing/delete', [])).status).toBe(400)
      expect(await deputy.deps.roles.find('billing')).toBeDefined()
      const deleted = await send('/admin/roles/billing/delete', [['confirm', 'delete']])
      expect(deleted.headers.get('location')).toBe('/admin/roles?done=deleted')
      expect(await deputy.deps.roles.find('billing')).toBeUndefined()
      expect((await deputy.deps.users.findByEmail(BOB.email))?.roles).toEqual(['support'])
      expect((await lastOf('role.deleted'))?.data).toEqual({ name: 'billing', holders: 1 })
      expect((await lastOf('role.deleted'))?.actor).toEqual(asAda())
    },
  )

  it.skipIf(skipDialect(name))(
    'roles: the built-in admin role keeps deputy:admin and cannot be deleted; bad input is one line',
    async () => {
      const { b, send } = await signedIn(ADA)
      const before = await lastSeq()
      const stripped = await send('/admin/roles/admin/permissions', [
        ['permission', 'tickets:answer'],
      ])
      expect(stripped.status).toBe(400)
      expect(await stripped.text()).toContain(
        'Permissions of the built-in admin role must include deputy:admin.',
      )
      const gone = await send('/admin/roles/admin/delete', [['confirm', 'delete']])
      expect(gone.status).toBe(400)
      expect(await gone.text()).toContain('The built-in admin role cannot be deleted.')
      expect((await b.get('/admin/roles/admin/delete')).status).toBe(404)
      const perm = await send('/admin/permissions/deputy:admin/delete', [])
      expect(perm.status).toBe(400)
      expect(await perm.text()).toContain('The permission deputy:admin cannot be deleted.')

      const dup = await send('/admin/roles', [['name', 'support']])
      expect(dup.status).toBe(409)
      expect(await dup.text()).toContain('A role named support already exists.')
      const badName = await send('/admin/roles', [['name', 'has spaces']])
      expect(badName.status).toBe(400)
      expect(await badName.text()).toContain('Name must be 1–64 letters')
      const unknown = await send('/admin/roles/support/permissions', [['permission', 'nope:x']])
      expect(unknown.status).toBe(400)
      expect(await unknown.text()).toContain('Unknown permission: nope:x (add it first).')
      expect((await b.get('/admin/roles/no-such-role')).status).toBe(404)

      expect((await deputy.deps.roles.find('admin'))?.permissions).toEqual(['deputy:admin'])
      expect(await deputy.deps.roles.find('has spaces')).toBeUndefined()
      expect(await lastSeq()).toBe(before)
    },
  )

  it.skipIf(skipDialect(name))(
    'resources: add one, edit its scopes and claims, refused whole on a bad row or claim',
    async () => {
      const { b, send } = await signedIn(ADA)
      const uri = 'https://files.example/mcp'
      const path = `/admin/resources/${encodeURIComponent(uri)}`
      const added = await send('/admin/resources', [
        ['uri', uri],
        ['name', 'Files'],
        ['scope_0', 'files:read'],
        ['sentence_0', 'Read your files'],
        ['scope_1', ''],
        ['sentence_1', ''],
        ['claims', 'email, favorite_song'],
      ])
      expect(added.status).toBe(303)
      expect(added.headers.get('location')).toBe(`${path}?done=created`)
      expect(await deputy.deps.resources.get(uri)).toMatchObject({
        name: 'Files',
        scopes: { 'files:read': 'Read your files' },
        claimsTemplate: ['email', 'favorite_song'],
        isDefault: false,
      })
      expect((await lastOf('resource.registered'))?.actor).toEqual(asAda())
      const again = await send('/admin/resources', [['uri', uri]])
      expect(again.status).toBe(409)
      expect(await again.text()).toContain(`The resource ${uri} is registered already`)

      // Saving the page replaces the scopes with its rows: an emptied row removes its scope.
      const saved = await send(path, [
        ['name', 'Files'],
        ['scope_0', ''],
        ['sentence_0', ''],
        ['scope_1', 'files:write'],
        ['sentence_1', 'Change your files'],
        ['claims', 'name'],
        ['default', 'yes'],
      ])
      expect(saved.headers.get('location')).toBe(`${path}?done=saved`)
      const edited = await deputy.deps.resources.get(uri)
      expect(edited?.scopes).toEqual({ 'files:write': 'Change your files' })
      expect(edited?.claimsTemplate).toEqual(['name'])
      expect(edited?.isDefault).toBe(true)
      expect((await lastOf('resource.registered'))?.data).toEqual({
        scopes: ['files:write'],
        claimsTemplate: ['name'],
        isDefault: true,
      })
      expect(await (await b.get(path)).text()).toContain('value="Change your files"')

      const before = await lastSeq()
      const refusals: [[string, string][], number, string][] = [
        [
          [['claims', 'sub']],
          400,
          'Claim "sub" is set by Deputy in every token and cannot be copied.',
        ],
        [[['claims', 'a{b}']], 400, 'Claim "a{b}" must be 1–64 letters, digits or _ . : -.'],
        [
          [
            ['scope_0', 'files:read'],
            ['sentence_0', ''],
          ],
          400,
          'Scope "files:read" needs a sentence',
        ],
        [
          [
            ['scope_0', ''],
            ['sentence_0', 'Orphan'],
          ],
          400,
          'Scope 1 has a sentence but no name.',
        ],
        [
          [
            ['scope_0', 'a'],
            ['sentence_0', 'A'],
            ['scope_1', 'a'],
            ['sentence_1', 'B'],
          ],
          400,
          'Scope "a" is given twice.',
        ],
        [
          [
            ['scope_0', 'has space'],
            ['sentence_0', 'S'],
          ],
          400,
          'Scope "has space" is not a valid scope name.',
        ],
      ]
      for (const [fields, status, line] of refusals) {
        const response = await send(path, fields)
        expect(response.status, line).toBe(status)
        expect(await textOf(response)).toContain(line)
      }
      expect(await deputy.deps.resources.get(uri)).toEqual(edited)
      expect(await lastSeq()).toBe(before)
      expect((await b.get('/admin/resources/https%3A%2F%2Fnowhere.example')).status).toBe(404)
    },
  )

  it.skipIf(skipDialect(name))(
    'resources: detail types are added with a JSON Schema, refused on bad JSON, and removed',
    async () => {
      const { b, send } = await signedIn(ADA)
      const before = await lastSeq()
      for (const [schema, line] of [
        ['{not json', 'The schema must be JSON, e.g. {"type": "object"}.'],
        ['["array"]', 'The schema must be a JSON object.'],
        ['{"type": "no-such-type"}', 'Schema is not a valid JSON Schema (draft 2020-12)'],
      ] as const) {
        const response = await send(`${SHOP_PATH}/detail-types`, [
          ['type', 'refund'],
          ['template', 'Refund {amount}'],
          ['schema', schema],
        ])
        expect(response.status, schema).toBe(400)
        expect(await textOf(response)).toContain(line)
      }
      expect(await lastSeq()).toBe(before)

      const schema = '{"type":"object","properties":{"amount":{"type":"number"}}}'
      const added = await send(`${SHOP_PATH}/detail-types`, [
        ['type', 'refund'],
        ['template', 'Refund {amount} euros'],
        ['schema', schema],
        ['high_risk', 'yes'],
      ])
      expect(added.headers.get('location')).toBe(`${SHOP_PATH}?done=type-saved`)
      const types = await deputy.deps.detailTypes.list(SHOP)
      expect(types.find((t) => t.type === 'refund')).toMatchObject({
        template: 'Refund {amount} euros',
        description: 'Refund {amount} euros',
        highRisk: true,
        schema: JSON.parse(schema),
      })
      expect((await lastOf('authorization-detail-type.registered'))?.actor).toEqual(asAda())
      const page = await (await b.get(SHOP_PATH)).text()
      expect(page).toContain('Refund {amount} euros')
      expect(page).toContain('Remove refund')
      expect(page).not.toContain('Remove tool_call')

      const removed = await send(`${SHOP_PATH}/detail-types/refund/remove`, [])
      expect(removed.headers.get('location')).toBe(`${SHOP_PATH}?done=type-removed`)
      expect((await deputy.deps.detailTypes.list(SHOP)).map((t) => t.type)).toEqual(['tool_call'])
      expect((await lastOf('authorization-detail-type.removed'))?.actor).toEqual(asAda())
      const builtIn = await send(`${SHOP_PATH}/detail-types/tool_call/remove`, [])
      expect(builtIn.status).toBe(404)
    },
  )
})
