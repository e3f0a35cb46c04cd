import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'
import { BAD_POLICIES, SHOP, SHOP_POLICIES, seedShop } from '../policy/shop-fixture.js'

const SYSTEM = { type: 'system' as const, id: 'test' }
const ADA = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Lovelace' }
const CAROL = { email: 'carol@example.com', password: 'not-an-administrator', name: 'Carol' }
const BUY = `${SHOP}#buyMcpShopItem`

/** A policy whose condition misspells `context.state`: line 3, column 8 (`context.stat`). */
const MISSPELT = `@id("shop.tools")
permit (principal, action == Deputy::Action::"${BUY}", resource)
when { context.stat.demoMode == "open" };
`

/** The text in a page's policy editor, as a browser would submit it. */
function hiddenText(html: string): string {
  const text = /<textarea id="policy-text"[^>]*>([^<]*)<\/textarea>/.exec(html)?.[1] ?? ''
  return text.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&')
}

/** Line and column (1-based) of `needle` in `text`, as an editor shows them. */
function positionOf(text: string, needle: string): { line: number; column: number } {
  const before = text.slice(0, text.indexOf(needle)).split('\n')
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 }
}

// Issue 15 §1, the Policies section: every page behind the console's gate, every change a form
// with the session's CSRF token (the validation endpoint takes it in x-csrf-token), each change
// made by the policy store's own put/remove and audited with the administrator as actor.
describe.each(DIALECTS)('console policies: access and changes ($name)', ({ name, create }) => {
  let deputy: TestDeputy
  let adaId: string
  let aliceId: string
  let agentId: string

  beforeAll(async () => {
    if (skipDialect(name)) return
    deputy = await startTestDeputy({ database: await create() })
    ;({ aliceId, agentId } = await seedShop(deputy))
    adaId = (await deputy.deps.users.create({ ...ADA, roles: ['admin'] }, SYSTEM)).id
    await deputy.deps.users.create(CAROL, SYSTEM)
    await deputy.deps.policies.put(SHOP_POLICIES, SYSTEM)
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
  const lastSeq = async () => (await tailAudit(deputy.deps.store, { limit: 1 }))[0]?.seq
  const validate = (
    b: ReturnType<typeof browser>,
    body: unknown,
    headers: Record<string, string>,
  ) =>
    b.request('/admin/policy/validate', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })

  it.skipIf(skipDialect(name))(
    'sends a visitor who is not signed in to sign in; the validation endpoint answers 401',
    async () => {
      const b = browser(deputy)
      for (const path of ['/admin/policies', '/admin/policies/shop.tools/history']) {
        const page = await b.get(path)
        expect(page.status).toBe(303)
        expect(page.headers.get('location')).toBe(`/login?return_to=${encodeURIComponent(path)}`)
      }
      const check = await validate(b, { text: MISSPELT }, { 'x-csrf-token': 'x' })
      expect(check.status).toBe(401)
      expect((await check.json()).error).toBe('unauthorized')
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses a person without deputy:admin: 403 pages, no save, no validation',
    async () => {
      const { b, csrf } = await signedIn(CAROL)
      for (const path of [
        '/admin/policies',
        '/admin/policies/shop.tools',
        '/admin/policy/simulate',
        '/admin/policy/explain',
      ]) {
        const page = await b.get(path)
        expect(page.status).toBe(403)
        expect(await page.text()).toContain('does not hold the deputy:admin permission')
      }
      const before = (await deputy.deps.policies.get('shop.tools'))?.version
      const post = await b.post('/admin/policies/shop.tools', {
        csrf_token: csrf,
        text: SHOP_POLICIES.split('\n\n')[0] as string,
      })
      expect(post.status).toBe(403)
      expect((await deputy.deps.policies.get('shop.tools'))?.version).toBe(before)
      const check = await validate(b, { text: MISSPELT }, { 'x-csrf-token': csrf })
      expect(check.status).toBe(403)
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses a save or removal without the CSRF token or with a wrong one, and changes nothing',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const before = await lastSeq()
      const text = '@id("sneaky")\npermit (principal, action, resource);'
      for (const token of [undefined, 'x'.repeat(43), `${csrf}x`]) {
        const sent: Record<string, string> = token === undefined ? {} : { csrf_token: token }
        const created = await b.post('/admin/policies', { ...sent, text })
        expect(created.status).toBe(403)
        expect(await created.text()).toContain('This form has expired or did not come from Deputy')
        const removed = await b.post('/admin/policies/shop.tools/remove', {
          ...sent,
          confirm: 'remove',
        })
        expect(removed.status).toBe(403)
      }
      expect(await deputy.deps.policies.get('sneaky')).toBeUndefined()
      expect(await deputy.deps.policies.get('shop.tools')).toBeDefined()
      expect(await lastSeq()).toBe(before)
    },
  )

  it.skipIf(skipDialect(name))(
    'validates as one types: JSON problems at line and column, only with the CSRF header',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      for (const headers of [{}, { 'x-csrf-token': `${csrf}x` }] as Record<string, string>[]) {
        const refused = await validate(b, { text: MISSPELT }, headers)
        expect(refused.status).toBe(403)
        expect((await refused.json()).message).toContain('x-csrf-token')
      }
      // A form (what another site could make a browser send) is not accepted.
      const form = await b.post(
        '/admin/policy/validate',
        { text: MISSPELT },
        { 'x-csrf-token': csrf },
      )
      expect(form.status).toBe(415)
      // The JSON bounds every outside input gets: too deep, or a NUL character, is one line.
      for (const [text, problem] of [
        [`${'['.repeat(100)}${']'.repeat(100)}`, 'nested deeper'],
        ['{"text":"permit\\u0000"}', 'NUL'],
        ['{"text":', 'not valid JSON'],
      ] as const) {
        const refused = await b.request('/admin/policy/validate', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: text,
        })
        expect(refused.status).toBe(400)
        expect((await refused.json()).message).toContain(problem)
      }

      const answer = await validate(b, { text: BAD_POLICIES }, { 'x-csrf-token': csrf })
      expect(answer.status).toBe(200)
      expect(answer.headers.get('cache-control')).toBe('no-store')
      const body = await answer.json()
      expect(body.valid).toBe(false)
      expect(body.problems).toEqual([
        expect.objectContaining({ policy_id: 'bad', line: 7, column: 8 }),
      ])
      expect(body.problems[0].message).toContain('stat')

      const fine = await validate(
        b,
        { text: `permit (principal, action == Deputy::Action::"${BUY}", resource);`, id: 'x' },
        { 'x-csrf-token': csrf },
      )
      expect(await fine.json()).toEqual({ valid: true, problems: [] })
      const bad = await validate(b, { text: 42 }, { 'x-csrf-token': csrf })
      expect(bad.status).toBe(400)
    },
  )

  it.skipIf(skipDialect(name))(
    'a refused save shows the problem at its line and column, keeps the text, stores nothing',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const stored = await deputy.deps.policies.get('shop.tools')
      const versions = (await deputy.deps.policies.history('shop.tools')).length
      const before = await lastSeq()
      const response = await b.post('/admin/policies/shop.tools', {
        csrf_token: csrf,
        text: MISSPELT,
      })
      expect(response.status).toBe(400)
      const html = await response.text()
      const at = positionOf(MISSPELT, 'context.stat')
      expect(at).toEqual({ line: 3, column: 8 })
      expect(html).toContain(`Line ${at.line}, column ${at.column}: `)
      expect(html).toContain('aria-invalid="true"')
      // The text as typed is back in the editor (HTML-escaped).
      expect(html).toContain('when { context.stat.demoMode == &quot;open&quot; };')
      const after = await deputy.deps.policies.get('shop.tools')
      expect(after?.version).toBe(stored?.version)
      expect(after?.text).toBe(stored?.text)
      expect((await deputy.deps.policies.history('shop.tools')).length).toBe(versions)
      expect(await lastSeq()).toBe(before)
    },
  )

  it.skipIf(skipDialect(name))(
    'saves through policies.put: a new version in force, audited with the administrator',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const version = (await deputy.deps.policies.get('shop.tools'))?.version ?? 0
      // The shop's tools only for the agent: the policy in force decides the next request.
      const text = `@id("shop.tools")
@description("Only through Claude.")
permit (
  principal,
  action in [Deputy::Action::"${BUY}", Deputy::Action::"${SHOP}#getUserInfo"],
  resource
)
when { context has agent };
`
      const saved = await b.post('/admin/policies/shop.tools', { csrf_token: csrf, text })
      expect(saved.status).toBe(303)
      expect(saved.headers.get('location')).toBe('/admin/policies/shop.tools?done=saved')
      const now = await deputy.deps.policies.get('shop.tools')
      expect(now?.version).toBe(version + 1)
      expect(now?.createdBy).toBe(`user:${adaId}`)
      const [record] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.written' })
      expect(record?.actor).toEqual({ type: 'user', id: adaId, label: ADA.email })
      expect(record?.target).toEqual({ type: 'policy', id: 'shop.tools' })

      // The same text again, with the CRLF line breaks a browser submits a textarea with.
      const again = await b.post('/admin/policies/shop.tools', {
        csrf_token: csrf,
        text: text.replaceAll('\n', '\r\n'),
      })
      expect(again.headers.get('location')).toBe('/admin/policies/shop.tools?done=unchanged')
      expect((await deputy.deps.policies.get('shop.tools'))?.version).toBe(version + 1)

      // A new policy from the list page, its id given in the form.
      const created = await b.post('/admin/policies', {
        csrf_token: csrf,
        id: 'shop.read-info',
        text: `permit (principal, action == Deputy::Action::"${SHOP}#getUserInfo", resource);`,
      })
      expect(created.status).toBe(303)
      expect(created.headers.get('location')).toBe('/admin/policies/shop.read-info?done=saved')
      const refusedNew = await b.post('/admin/policies', { csrf_token: csrf, text: BAD_POLICIES })
      expect(refusedNew.status).toBe(400)
      expect(await refusedNew.text()).toContain('Line 7, column 8: policy bad, ')
      expect(await deputy.deps.policies.get('bad')).toBeUndefined()
      expect(await deputy.deps.policies.get('ok')).toBeUndefined()
    },
  )

  it.skipIf(skipDialect(name))(
    'removes only from the confirm page; the list still names it; history and diff',
    async () => {
      const { b, csrf } = await signedIn(ADA)
      const ask = await b.get('/admin/policies/shop.read-info/remove')
      expect(ask.status).toBe(200)
      expect(await ask.text()).toContain('name="confirm" value="remove"')
      const unconfirmed = await b.post('/admin/policies/shop.read-info/remove', {
        csrf_token: csrf,
      })
      expect(unconfirmed.status).toBe(400)
      expect(await deputy.deps.policies.get('shop.read-info')).toBeDefined()
      const removed = await b.post('/admin/policies/shop.read-info/remove', {
        csrf_token: csrf,
        confirm: 'remove',
      })
      expect(removed.status).toBe(303)
      expect(await deputy.deps.policies.get('shop.read-info')).toBeUndefined()
      const [record] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.removed' })
      expect(record?.actor.id).toBe(adaId)
      const list = await (await b.get('/admin/policies')).text()
      expect(list).toMatch(
        /shop\.read-info<\/a> <span class="muted">version 2<\/span><span class="badge">removed/,
      )
      expect((await b.get('/admin/policies/shop.read-info/remove')).status).toBe(404)
      // A removed policy's page offers its last text; saving it restores the policy.
      const gone = await (await b.get('/admin/policies/shop.read-info')).text()
      expect(gone).toContain('Removed in version 2')
      expect(gone).toContain('#getUserInfo&quot;, resource);</textarea>')
      const restored = await b.post('/admin/policies/shop.read-info', {
        csrf_token: csrf,
        text: hiddenText(gone),
      })
      expect(restored.headers.get('location')).toBe('/admin/policies/shop.read-info?done=saved')
      expect((await deputy.deps.policies.get('shop.read-info'))?.version).toBe(3)

      const history = await (await b.get('/admin/policies/shop.tools/history')).text()
      expect(history).toContain('href="/admin/policies/shop.tools/versions/2"')
      expect(history).toContain(`by ${ADA.email}`)
      expect(history).toContain('by system:test')
      const diff = await (await b.get('/admin/policies/shop.tools/versions/2')).text()
      expect(diff).toContain('<ins>+ @description(&quot;Only through Claude.&quot;)\n</ins>')
      expect(diff).toContain(
        '<del>− @description(&quot;Signed-in people may use the shop&#39;s tools.&quot;)\n</del>',
      )
      expect(diff).toContain('<ins>+ when { context has agent };\n</ins>')
      expect(diff).toContain('</ins>  permit (\n')
      for (const path of [
        '/admin/policies/shop.tools/versions/9',
        '/admin/policies/shop.tools/versions/x',
        '/admin/policies/no-such-policy',
        '/admin/policies/no-such-policy/history',
      ])
        expect((await b.get(path)).status).toBe(404)
    },
  )

  it.skipIf(skipDialect(name))(
    'simulates what an agent may do for a person and explains one request',
    async () => {
      const { b } = await signedIn(ADA)
      const sim = await b.get(
        `/admin/policy/simulate?person=${aliceId}&client=${encodeURIComponent(agentId)}`,
      )
      expect(sim.status).toBe(200)
      const simHtml = await sim.text()
      expect(simHtml).toContain(`<code>${BUY}</code>`)
      expect(simHtml).toContain(`<code>${BUY}</code><p><strong>Allowed.</strong>`)
      expect(simHtml).toContain('href="/admin/policies/shop.tools"')
      // Without the agent the same policy no longer permits.
      const alone = await (await b.get(`/admin/policy/simulate?person=${aliceId}`)).text()
      expect(alone).toContain(`<code>${BUY}</code><p><strong>Denied.</strong>`)

      const explained = await b.get(
        `/admin/policy/explain?person=alice%40example.com&client=${encodeURIComponent(agentId)}` +
          `&action=${encodeURIComponent(BUY)}&arguments=${encodeURIComponent('{"item":"shirt"}')}` +
          `&state=${encodeURIComponent('{"demoMode":"banned"}')}`,
      )
      expect(explained.status).toBe(200)
      const explainedHtml = await explained.text()
      expect(explainedHtml).toContain('<strong>Denied.</strong>')
      expect(explainedHtml).toContain('href="/admin/policies/shop.banned-order"')

      const badJson = await b.get(
        `/admin/policy/explain?person=${aliceId}&action=${encodeURIComponent(BUY)}&arguments=%7Bnope`,
      )
      expect(badJson.status).toBe(400)
      expect(await badJson.text()).toContain('The arguments must be JSON')
      const unknown = await b.get(`/admin/policy/explain?person=${aliceId}&action=noSuchTool`)
      expect(unknown.status).toBe(404)
      expect(await unknown.text()).toContain('No action noSuchTool is declared')
    },
  )

  it.skipIf(skipDialect(name))(
    'serves the editor under the strict CSP with its script as a file, never cached',
    async () => {
      const { b } = await signedIn(ADA)
      const page = await b.get('/admin/policies/shop.tools')
      expect(page.headers.get('cache-control')).toBe('no-store')
      const csp = page.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("script-src 'self'")
      expect(csp).not.toContain('unsafe-inline')
      const html = await page.text()
      const src = /<script src="(\/assets\/policy-editor-[0-9a-f]{12}\.js)" defer/.exec(html)?.[1]
      expect(src).toBeDefined()
      expect(html).not.toMatch(/<script(?! src=)/)
      const script = await b.get(src as string)
      expect(script.headers.get('content-type')).toContain('text/javascript')
      expect(await script.text()).toContain("'x-csrf-token': csrf.value")
    },
  )
})
