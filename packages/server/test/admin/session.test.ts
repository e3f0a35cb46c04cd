import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

const SYSTEM = { type: 'system', id: 'test' } as const

// The admin API used from a real signed-in browser session (sign-in form, session cookie), not a
// key. The session's CSRF token is the one its pages carry (the account page's sign-out form).
describe('admin API with a signed-in session (§9)', () => {
  let deputy: TestDeputy
  let adminId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    const admin = await deputy.deps.users.create(
      { email: 'root@example.com', name: 'Root', roles: ['admin'], password: 'root-password-1' },
      SYSTEM,
    )
    adminId = admin.id
    await deputy.deps.users.create(
      { email: 'mia@example.com', name: 'Mia', password: 'mia-password-1' },
      SYSTEM,
    )
  })
  afterAll(() => deputy?.dispose())

  /** Signs in through the form and returns the client with the session's CSRF token. */
  async function signedIn(email: string, password: string) {
    const client = browser(deputy)
    expect((await client.signIn(email, password)).status).toBe(303)
    const account = await client.get('/account')
    return { client, csrf: hiddenField(await account.text(), 'csrf_token') }
  }

  const createRole = (
    client: ReturnType<typeof browser>,
    name: string,
    headers: Record<string, string> = {},
  ) =>
    client.request('/admin/api/roles', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name }),
    })

  it('answers 403 for a signed-in person without deputy:admin', async () => {
    const { client, csrf } = await signedIn('mia@example.com', 'mia-password-1')
    const res = await client.get('/admin/api/users')
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({
      error: 'ERR_FORBIDDEN',
      message: 'mia@example.com does not have the deputy:admin permission',
    })
    expect((await createRole(client, 'by-mia', { 'x-csrf-token': csrf })).status).toBe(403)
  })

  it('lets an administrator read without a CSRF token', async () => {
    const { client } = await signedIn('root@example.com', 'root-password-1')
    const res = await client.get('/admin/api/users')
    expect(res.status).toBe(200)
    const body = (await res.json()) as { users: { email: string }[] }
    expect(body.users.map((u) => u.email)).toEqual(['mia@example.com', 'root@example.com'])
  })

  it('refuses a change without the right X-CSRF-Token header, and makes nothing', async () => {
    const { client } = await signedIn('root@example.com', 'root-password-1')
    for (const headers of [{}, { 'x-csrf-token': 'guessed' }] as Record<string, string>[]) {
      const res = await createRole(client, 'forged', headers)
      expect(res.status).toBe(403)
      expect(((await res.json()) as { message: string }).message).toBe(
        'a change made with a signed-in session must send the X-CSRF-Token header',
      )
    }
    const roles = await deputy.deps.db
      .selectFrom('roles')
      .select('name')
      .where('name', '=', 'forged')
      .execute()
    expect(roles).toEqual([])
  })

  it('makes a change with the session’s CSRF token and audits the person as actor', async () => {
    const { client, csrf } = await signedIn('root@example.com', 'root-password-1')
    const res = await createRole(client, 'auditors', { 'x-csrf-token': csrf })
    expect(res.status).toBe(201)
    const event = await deputy.deps.db
      .selectFrom('audit_events')
      .select(['actor'])
      .where('type', '=', 'role.created')
      .where('target', 'like', '%auditors%')
      .executeTakeFirstOrThrow()
    expect(JSON.parse(event.actor)).toEqual({
      type: 'user',
      id: adminId,
      label: 'root@example.com',
    })
  })

  it('answers 403 once the administrator has been disabled (the session ends with it)', async () => {
    const { client } = await signedIn('root@example.com', 'root-password-1')
    await deputy.deps.users.setStatus('root@example.com', 'disabled', SYSTEM)
    const res = await client.get('/admin/api/users')
    expect(res.status).toBe(401)
    await deputy.deps.users.setStatus('root@example.com', 'active', SYSTEM)
  })

  it('answers 401 when nobody is signed in', async () => {
    expect((await browser(deputy).get('/admin/api/roles')).status).toBe(401)
  })
})
