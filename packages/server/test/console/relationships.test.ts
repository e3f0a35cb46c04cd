import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { parseTuple } from '../../src/policy/tuple-syntax.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' }

// Issue 15 §1: relationship tuples in the console, through relationships.write / delete / check
// as `deputy relations` and /admin/api/relations use them (the gate and CSRF refusals of these
// routes: relationships-approvals-providers.test.ts).
describe.each(DIALECTS)('console relationships ($name)', ({ name, create }) => {
  let deputy: TestDeputy
  let adaId: string

  beforeAll(async () => {
    if (skipDialect(name)) return
    deputy = await startTestDeputy({ database: await create() })
    adaId = (await deputy.deps.users.create({ ...ADA, roles: ['admin'] }, SYSTEM)).id
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
  const headSeq = async () => (await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq

  it.skipIf(skipDialect(name))(
    'relationships: writes, lists, pages, checks with the path, deletes, audited as the admin',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const write = async (object: string, relation: string, subject: string) =>
        b.post('/admin/relationships', { csrf_token: csrf, object, relation, subject })
      const first = await write('group:eng', 'member', 'user:ada')
      expect(first.status).toBe(303)
      expect(first.headers.get('location')).toBe(
        '/admin/relationships?object=group%3Aeng&done=written',
      )
      expect((await lastOf('relationships.written'))?.actor).toEqual({
        type: 'user',
        id: adaId,
        label: ADA.email,
      })
      expect((await lastOf('relationships.written'))?.data).toMatchObject({
        tuples: ['group:eng#member@user:ada'],
      })
      expect((await write('group:all', 'member', 'group:eng#member')).status).toBe(303)
      expect((await write('doc:readme', 'viewer', 'group:all#member')).status).toBe(303)
      // The tuple syntax in one field is accepted too; writing it again changes nothing.
      const again = await b.post('/admin/relationships', {
        csrf_token: csrf,
        tuple: 'doc:readme#viewer@group:all#member',
      })
      expect(again.headers.get('location')).toContain('done=kept')

      const yes = await b.get(
        '/admin/relationships/check?object=doc:readme&relation=viewer&subject=user:ada',
      )
      const yesText = await yes.text()
      expect(yesText).toContain('Yes:')
      const path = [...yesText.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1])
      expect(path).toEqual([
        'group:eng#member@user:ada',
        'group:all#member@group:eng#member',
        'doc:readme#viewer@group:all#member',
      ])
      const no = await b.get(
        '/admin/relationships/check?object=doc:readme&relation=viewer&subject=user:bob',
      )
      expect(await no.text()).toContain('No:')
      const badCheck = await b.get(
        '/admin/relationships/check?object=readme&relation=viewer&subject=user:bob',
      )
      expect(badCheck.status).toBe(400)
      expect(await badCheck.text()).toContain('needs a type, as in type:id')

      // Paged 50 at a time, in key order, through the "Next tuples" link.
      await deputy.deps.relationships.write(
        Array.from({ length: 60 }, (_, i) =>
          parseTuple(`page:p${String(i).padStart(2, '0')}#viewer@user:bob`),
        ),
        SYSTEM,
      )
      const one = await (await b.get('/admin/relationships?object=page')).text()
      expect(one.match(/<code>page:/g)?.length).toBe(50)
      const next = /href="\/admin\/relationships\?([^"]+)">Next tuples/.exec(one)?.[1] ?? ''
      expect(next).toContain('after=')
      const two = await (
        await b.get(`/admin/relationships?${next.replaceAll('&amp;', '&')}`)
      ).text()
      expect(two.match(/<code>page:/g)?.length).toBe(10)
      expect(two).toContain('page:p59#viewer@user:bob')
      expect(two).not.toContain('page:p49#')
      expect(two).not.toContain('Next tuples')
      const filtered = await (
        await b.get('/admin/relationships?relation=member&subject=group:eng%23member')
      ).text()
      expect(filtered).toContain('group:all#member@group:eng#member')
      expect(filtered).not.toContain('page:p')

      const deleted = await b.post('/admin/relationships/delete', {
        csrf_token: csrf,
        tuple: 'group:all#member@group:eng#member',
      })
      expect(deleted.headers.get('location')).toContain('done=deleted')
      expect((await lastOf('relationships.deleted'))?.actor.id).toBe(adaId)
      const after = await b.get(
        '/admin/relationships/check?object=doc:readme&relation=viewer&subject=user:ada',
      )
      expect(await after.text()).toContain('No:')
    },
  )

  it.skipIf(skipDialect(name))(
    'relationships: a malformed tuple or filter is one line, and nothing is written',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const before = await headSeq()
      const bad = await b.post('/admin/relationships', {
        csrf_token: csrf,
        object: 'doc:x',
        relation: 'Viewer!',
        subject: 'user:bob',
      })
      expect(bad.status).toBe(400)
      expect(await bad.text()).toContain('Relation &quot;Viewer!&quot; must be a lower-case letter')
      const missing = await b.post('/admin/relationships', { csrf_token: csrf, object: 'doc:x' })
      expect(missing.status).toBe(400)
      const filter = await b.get('/admin/relationships?subject=nobody')
      expect(filter.status).toBe(400)
      expect(await filter.text()).toContain('needs a type')
      expect(await headSeq()).toBe(before)
      expect(await deputy.deps.relationships.read({ object: { type: 'doc', id: 'x' } })).toEqual([])
    },
  )
})
