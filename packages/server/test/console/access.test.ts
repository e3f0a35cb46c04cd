import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' }
const BOB = { email: 'bob@example.com', password: 'not-an-administrator', name: 'Bob Builder' }

// Issue 15 §1: the console is for administrators; every change is a form with the session's
// CSRF token, made through the same domain functions as the admin API, audited with the person.
describe.each(DIALECTS)('operator console access and changes ($name)', ({ name, create }) => {
  let deputy: TestDeputy
  let adaId: string
  let bobId: string

  beforeAll(async () => {
    if (skipDialect(name)) return
    deputy = await startTestDeputy({ database: await create() })
    adaId = (await deputy.deps.users.create({ ...ADA, roles: ['admin'] }, SYSTEM)).id
    bobId = (await deputy.deps.users.create(BOB, SYSTEM)).id
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
  const lastOf = async (type: string) => (await tailAudit(deputy.deps.store, { limit: 1, type }))[0]

  it.skipIf(skipDialect(name))(
    'sends a visitor who is not signed in to the sign-in page, coming back',
    async () => {
      const b = browser(deputy)
      const page = await b.get('/admin/people?q=ada')
      expect(page.status).toBe(303)
      expect(page.headers.get('location')).toBe(
        `/login?return_to=${encodeURIComponent('/admin/people?q=ada')}`,
      )
      const post = await b.post(`/admin/people/${bobId}/status`, { status: 'disabled' })
      expect(post.status).toBe(303)
      expect(post.headers.get('location')).toContain('/login?return_to=')
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses a signed-in person without deputy:admin with a 403 page, and their changes',
    async () => {
      const { b, csrf } = await signedIn(BOB)
      for (const path of ['/admin', '/admin/people', '/admin/audit', '/admin/keys']) {
        const page = await b.get(path)
        expect(page.status).toBe(403)
        expect(await page.text()).toContain('does not hold the deputy:admin permission')
      }
      const post = await b.post('/admin/people', {
        csrf_token: csrf,
        email: 'eve@example.com',
        name: 'Eve',
      })
      expect(post.status).toBe(403)
      expect(await deputy.deps.users.findByEmail('eve@example.com')).toBeUndefined()
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses a change without the CSRF token or with a wrong one, and changes nothing',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const before = (await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq
      for (const token of [undefined, 'x'.repeat(43), `${csrf}x`]) {
        const response = await b.post(`/admin/people/${bobId}/status`, {
          ...(token !== undefined && { csrf_token: token }),
          status: 'disabled',
        })
        expect(response.status).toBe(403)
        expect(await response.text()).toContain('This form has expired or did not come from Deputy')
      }
      expect((await deputy.deps.users.findById(bobId))?.status).toBe('active')
      expect((await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq).toBe(before)
      // A JSON body with the right token is not a form: refused too.
      const json = await b.request(`/admin/people/${bobId}/status`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csrf_token: csrf, status: 'disabled' }),
      })
      expect(json.status).toBe(415)
      expect((await deputy.deps.users.findById(bobId))?.status).toBe('active')
    },
  )

  it.skipIf(skipDialect(name))(
    'a change through the console is audited with the administrator as actor, as through the API',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const response = await b.post(`/admin/people/${bobId}/status`, {
        csrf_token: csrf,
        status: 'disabled',
      })
      expect(response.status).toBe(303)
      expect((await deputy.deps.users.findById(bobId))?.status).toBe('disabled')
      const viaConsole = await lastOf('user.disabled')
      expect(viaConsole?.actor).toEqual({ type: 'user', id: adaId, label: ADA.email })
      expect(viaConsole?.target).toEqual({ type: 'user', id: bobId })

      // The admin API's session path makes the same change with the same record.
      const api = await b.request(`/admin/api/users/${bobId}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ status: 'active' }),
      })
      expect(api.status).toBe(200)
      const viaApi = await lastOf('user.enabled')
      expect(viaApi?.actor).toEqual(viaConsole?.actor)
      expect(viaApi?.data).toEqual(viaConsole?.data)
    },
  )

  it.skipIf(skipDialect(name))(
    'one line for a refused change: a duplicate email, claims that are not JSON',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const dup = await b.post('/admin/people', { csrf_token: csrf, email: BOB.email, name: 'Bob' })
      expect(dup.status).toBe(409)
      expect(await dup.text()).toContain(`A user with email ${BOB.email} already exists.`)
      const claims = await b.post(`/admin/people/${bobId}/claims`, {
        csrf_token: csrf,
        claims: '{not json',
      })
      expect(claims.status).toBe(400)
      expect(await claims.text()).toContain('Claims must be JSON')
      const reserved = await b.post(`/admin/people/${bobId}/claims`, {
        csrf_token: csrf,
        claims: '{"sub": "someone-else"}',
      })
      expect(reserved.status).toBe(400)
      expect((await deputy.deps.users.findById(bobId))?.claims).toEqual({})
    },
  )

  it.skipIf(skipDialect(name))(
    'filters the audit log by person and type, and exports exactly what it shows',
    async () => {
      const { b } = await signedIn(ADA)
      // An id with LIKE's wildcards must match only itself.
      for (const id of ['odd_1%', 'oddx1z'])
        await deputy.deps.audit.append({
          type: 'test.noted',
          actor: SYSTEM,
          target: { type: 'client', id },
        })
      const page = await b.get(
        `/admin/audit?person=${encodeURIComponent(BOB.email)}&type=user.disabled`,
      )
      expect(page.status).toBe(200)
      const html = await page.text()
      expect(html).toContain('user.disabled')
      expect(html).not.toContain('user.enabled')

      const exported = await b.get(`/admin/audit/export?person=${encodeURIComponent(bobId)}`)
      expect(exported.headers.get('content-type')).toContain('application/x-ndjson')
      expect(exported.headers.get('content-disposition')).toContain('attachment')
      const lines = (await exported.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(lines.length).toBeGreaterThanOrEqual(3)
      for (const record of lines) expect(JSON.stringify(record)).toContain(bobId)
      expect(lines.map((l) => l.type)).toContain('user.created')

      const oddOnly = await b.get(`/admin/audit/export?agent=${encodeURIComponent('odd_1%')}`)
      const oddLines = (await oddOnly.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(oddLines.map((l) => l.target?.id)).toEqual(['odd_1%'])
    },
  )

  it.skipIf(skipDialect(name))(
    'enables a disabled client through the console and through the admin API alike',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const { client } = await deputy.deps.clients.register(
        { name: 'Shop Agent', redirectUris: ['https://agent.example/cb'], public: true },
        SYSTEM,
      )
      const path = `/admin/clients/${encodeURIComponent(client.clientId)}`
      expect((await b.post(`${path}/disable`, { csrf_token: csrf })).status).toBe(303)
      expect((await deputy.deps.clients.get(client.clientId))?.status).toBe('disabled')
      expect((await b.post(`${path}/enable`, { csrf_token: csrf })).status).toBe(303)
      expect((await deputy.deps.clients.get(client.clientId))?.status).toBe('active')
      const viaConsole = await lastOf('client.enabled')
      expect(viaConsole?.actor.id).toBe(adaId)

      await deputy.deps.clients.disable(client.clientId, SYSTEM)
      const key = await deputy.deps.adminApiKeys.create('ci', SYSTEM)
      const api = await deputy.app.request(
        `http://localhost:8080/admin/api/clients/${encodeURIComponent(client.clientId)}/enable`,
        { method: 'POST', headers: { authorization: `Bearer ${key.key}` } },
      )
      expect(api.status).toBe(200)
      expect((await api.json()).status).toBe('active')
      expect((await lastOf('client.enabled'))?.target).toEqual(viaConsole?.target)

      // Deleting needs the confirmation the delete page sends.
      const unconfirmed = await b.post(`${path}/delete`, { csrf_token: csrf })
      expect(unconfirmed.status).toBe(400)
      expect(await deputy.deps.clients.get(client.clientId)).toBeDefined()
    },
  )

  it.skipIf(skipDialect(name))(
    'answers 404 for an unknown person or client, and serves every page under the strict CSP',
    async () => {
      const { b } = await signedIn(ADA)
      expect((await b.get('/admin/people/no-such-person')).status).toBe(404)
      expect((await b.get('/admin/clients/no-such-client')).status).toBe(404)
      const page = await b.get('/admin')
      expect(page.headers.get('cache-control')).toBe('no-store')
      const csp = page.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("script-src 'self'")
      expect(csp).not.toContain('unsafe-inline')
      expect(await page.text()).not.toContain('<script')
    },
  )

  // Last: it breaks this Deputy's chain on purpose.
  it.skipIf(skipDialect(name))('says where the chain breaks when a record was edited', async () => {
    const { b } = await signedIn(ADA)
    const intact = await (await b.get('/admin/audit?verify=1')).text()
    expect(intact).toContain('The chain is intact')
    await deputy.deps.db
      .updateTable('audit_events')
      .set({ reason: 'edited by hand' })
      .where('seq', '=', 2)
      .execute()
    const broken = await (await b.get('/admin/audit?verify=1')).text()
    expect(broken).toContain(
      'The chain is broken: record 2: content does not match its hash (edited?)',
    )
  })
})
