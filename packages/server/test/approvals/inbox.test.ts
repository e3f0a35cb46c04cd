import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createInboxRoutes } from '../../src/approvals/inbox.js'
import { endSession, SESSION_COOKIE, startSession } from '../../src/identity/sessions.js'
import { scopeSentence } from '../../src/oauth/consent.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { hiddenField } from '../helpers/sign-in.js'
import { httpBrowser, type InboxFixture, startInboxFixture, TRANSFER } from './inbox-fixture.js'

// The person's side of backchannel authentication over real HTTP (issue 11 §3): who may see a
// request, CSRF and framing, the decision bound to the displayed digest, the audit record.

// On every dialect this machine has (PostgreSQL: the events go through LISTEN/NOTIFY).
const dialects = DIALECTS.filter((d) => !skipDialect(d.name))

describe.each(dialects)('approvals inbox over HTTP on $name (issue 11 §3)', (dialect) => {
  let f: InboxFixture

  beforeAll(async () => {
    f = await startInboxFixture({ database: await dialect.create() })
  }, 60_000)

  afterAll(async () => {
    await f?.close()
  })

  it('sends a signed-out visitor to sign in and back to the request afterwards', async () => {
    const { id } = await f.ask({ binding_message: 'SIGN-IN' })
    const visitor = httpBrowser(f.direct)
    const first = await visitor.get(`/approvals/${id}`)
    expect(first.status).toBe(303)
    const login = first.headers.get('location') as string
    expect(login).toBe(`/login?return_to=${encodeURIComponent(`/approvals/${id}`)}`)
    const inbox = await visitor.get('/approvals')
    expect(inbox.headers.get('location')).toBe('/login?return_to=%2Fapprovals')
    const page = await visitor.get(login)
    const signedIn = await visitor.post('/login', {
      csrf_token: hiddenField(await page.text(), 'csrf_token'),
      return_to: `/approvals/${id}`,
      email: f.alice.email,
      password: 'correct horse battery',
    })
    expect(signedIn.status).toBe(303)
    expect(signedIn.headers.get('location')).toBe(`/approvals/${id}`)
    const shown = await visitor.get(`/approvals/${id}`)
    expect(shown.status).toBe(200)
    expect(await shown.text()).toContain('SIGN-IN')
  })

  it('lists the pending request with agent, person, binding message, details in words and JSON, expiry', async () => {
    const { id } = await f.ask({ binding_message: 'LIST-1' })
    const alice = await f.signedIn('alice')
    const res = await alice.get('/approvals')
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain(`href="/approvals/${id}"`)
    expect(html).toContain('Trading agent')
    expect(html).toContain('LIST-1')
    expect(html).toContain('Pay 120.00 EUR to ACME Shirts')
    const one = await (await alice.get(`/approvals/${id}`)).text()
    expect(one).toContain('alice@example.com')
    expect(one).toContain('&quot;creditorName&quot;: &quot;ACME Shirts&quot;')
    expect(one).toMatch(/Expires <time datetime="[^"]+">/)
  })

  it('answers 404 for another person’s request, on the page and to a decision', async () => {
    const { id } = await f.ask({ login_hint: f.bob.email, binding_message: 'BOBS' })
    const alice = await f.signedIn('alice')
    const page = await alice.get(`/approvals/${id}`)
    expect(page.status).toBe(404)
    expect(await page.text()).not.toContain('BOBS')
    const bob = await f.signedIn('bob')
    const bobsPage = await (await bob.get(`/approvals/${id}`)).text()
    const decided = await alice.post(`/approvals/${id}`, {
      csrf_token: await csrfOf(alice),
      decision: 'approve',
      shown_digest: hiddenField(bobsPage, 'shown_digest'),
    })
    expect(decided.status).toBe(404)
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('pending')
  })

  it('refuses framing on the inbox and the request page', async () => {
    const { id } = await f.ask()
    const alice = await f.signedIn('alice')
    for (const path of ['/approvals', `/approvals/${id}`]) {
      const res = await alice.get(path)
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
      expect(res.headers.get('cache-control')).toBe('no-store')
    }
  })

  it('refuses a decision without the session’s CSRF token, and decides nothing', async () => {
    const { id, authReqId } = await f.ask()
    const alice = await f.signedIn('alice')
    const page = await (await alice.get(`/approvals/${id}`)).text()
    for (const csrf of [undefined, 'not-the-token']) {
      const res = await alice.post(`/approvals/${id}`, {
        ...(csrf === undefined ? {} : { csrf_token: csrf }),
        decision: 'approve',
        shown_digest: hiddenField(page, 'shown_digest'),
      })
      expect(res.status).toBe(403)
    }
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('pending')
    expect((await f.token(authReqId)).body.error).toBe('authorization_pending')
  })

  it('refuses a decision whose digest does not match what the request now shows', async () => {
    const { id } = await f.ask({ binding_message: 'DIGEST' })
    const alice = await f.signedIn('alice')
    const page = await (await alice.get(`/approvals/${id}`)).text()
    const digest = hiddenField(page, 'shown_digest')
    expect(digest).toMatch(/^sha-256:[0-9a-f]{64}$/)
    const wrong = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      decision: 'approve',
      shown_digest: `sha-256:${'0'.repeat(64)}`,
    })
    expect(wrong.status).toBe(409)
    // What the page displays changes (the detail type now reads differently): the old digest no
    // longer binds.
    const types = await f.deputy.deps.detailTypes.list('https://trading.example/mcp')
    const payment = types.find((t) => t.type === 'payment_initiation')
    if (!payment) throw new Error('no payment type')
    await f.deputy.deps.detailTypes.put(
      { ...payment, template: 'Send {instructedAmount.amount} to {creditorName}' },
      { type: 'system', id: 'test' },
    )
    const stale = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      decision: 'approve',
      shown_digest: digest,
    })
    expect(stale.status).toBe(409)
    expect(await stale.text()).toContain('Nothing was decided')
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('pending')
    await f.deputy.deps.detailTypes.put(payment, { type: 'system', id: 'test' })
    const refusals = await f.deputy.deps.db
      .selectFrom('audit_events')
      .select('type')
      .where('type', '=', 'approval.decision-refused')
      .execute()
    expect(refusals.length).toBe(2)
  })

  it('approves with the digest of the shown page: audited with it, and the poll at /token gets the token', async () => {
    const { id, authReqId } = await f.ask({ binding_message: 'APPROVE' })
    const alice = await f.signedIn('alice')
    const page = await (await alice.get(`/approvals/${id}`)).text()
    const digest = hiddenField(page, 'shown_digest')
    const res = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      decision: 'approve',
      shown_digest: digest,
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(`/approvals/${id}`)
    const request = await f.deputy.deps.approvals.byId(id)
    expect(request).toMatchObject({ status: 'approved', shownDigest: digest })
    const audit = await f.deputy.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'approval.granted')
      .where('target', '=', JSON.stringify({ type: 'approval', id }))
      .executeTakeFirstOrThrow()
    expect(JSON.parse(audit.data as string)).toMatchObject({ shownDigest: digest })
    const token = await f.token(authReqId)
    expect(token.status).toBe(200)
    expect(token.body.access_token).toEqual(expect.any(String))
    // A second decision on a decided request counts for nothing.
    const again = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      decision: 'deny',
      shown_digest: digest,
    })
    expect(again.status).toBe(409)
    const history = await (await alice.get('/approvals')).text()
    expect(history.slice(history.indexOf('id="history"'))).toContain(`/approvals/${id}`)
  })

  it('a session signed in through an upstream provider is never fresh enough for a high-risk Approve', async () => {
    const alice = await f.signedIn('alice')
    // As providers/sign-in-routes.ts starts it: the provider's session in the browser completed
    // it without Alice typing anything, however recent it is.
    await f.deputy.deps.db
      .updateTable('sessions')
      .set({ signed_in_with: 'provider:github' })
      .where('user_id', '=', f.alice.id)
      .execute()
    const { id } = await f.ask({ authorization_details: JSON.stringify([TRANSFER]) })
    const page = await (await alice.get(`/approvals/${id}`)).text()
    expect(page).toContain('enter your password again')
    const refused = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      shown_digest: hiddenField(page, 'shown_digest'),
      decision: 'approve',
    })
    expect(refused.headers.get('location')).toBe(
      `/login?fresh&return_to=${encodeURIComponent(`/approvals/${id}`)}`,
    )
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('pending')
    // Deny still counts, and leaves no request pending for the tests after this one.
    const denied = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(page, 'csrf_token'),
      shown_digest: hiddenField(page, 'shown_digest'),
      decision: 'deny',
    })
    expect(denied.status).toBe(303)
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('denied')
  })

  it('a high-risk request needs the password again before Approve counts; Deny never does', async () => {
    const alice = await f.signedIn('alice')
    f.advance(6 * 60_000)
    const { id, authReqId } = await f.ask({ authorization_details: JSON.stringify([TRANSFER]) })
    const page = await (await alice.get(`/approvals/${id}`)).text()
    expect(page).toContain('Transfer 9000.00 to Mallory Ltd')
    expect(page).toContain('enter your password again')
    const fields = {
      csrf_token: hiddenField(page, 'csrf_token'),
      shown_digest: hiddenField(page, 'shown_digest'),
    }
    const stale = await alice.post(`/approvals/${id}`, { ...fields, decision: 'approve' })
    expect(stale.status).toBe(303)
    expect(stale.headers.get('location')).toBe(
      `/login?fresh&return_to=${encodeURIComponent(`/approvals/${id}`)}`,
    )
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('pending')
    expect((await f.token(authReqId)).body.error).toBe('authorization_pending')

    // The password again: a new session, and Approve counts.
    const login = await (await alice.get(stale.headers.get('location') as string)).text()
    expect(login).toContain('Enter your password again')
    const again = await alice.post('/login', {
      csrf_token: hiddenField(login, 'csrf_token'),
      return_to: `/approvals/${id}`,
      email: f.alice.email,
      password: 'correct horse battery',
    })
    expect(again.headers.get('location')).toBe(`/approvals/${id}`)
    const fresh = await (await alice.get(`/approvals/${id}`)).text()
    const approved = await alice.post(`/approvals/${id}`, {
      csrf_token: hiddenField(fresh, 'csrf_token'),
      shown_digest: hiddenField(fresh, 'shown_digest'),
      decision: 'approve',
    })
    expect(approved.status).toBe(303)
    expect((await f.deputy.deps.approvals.byId(id))?.status).toBe('approved')

    // Deny needs no fresh sign-in.
    f.advance(6 * 60_000)
    const second = await f.ask({ authorization_details: JSON.stringify([TRANSFER]) })
    const secondPage = await (await alice.get(`/approvals/${second.id}`)).text()
    const denied = await alice.post(`/approvals/${second.id}`, {
      csrf_token: hiddenField(secondPage, 'csrf_token'),
      shown_digest: hiddenField(secondPage, 'shown_digest'),
      decision: 'deny',
    })
    expect(denied.status).toBe(303)
    expect((await f.deputy.deps.approvals.byId(second.id))?.status).toBe('denied')
    expect((await f.token(second.authReqId)).body.error).toBe('access_denied')
  })

  it('streams the person’s own requests as server-sent events, and only theirs', async () => {
    const alice = await f.signedIn('alice')
    const controller = new AbortController()
    const res = await fetch(`${f.direct}/approvals/events`, {
      headers: { cookie: alice.jar.header() },
      signal: controller.signal,
    })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let text = ''
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read()
        if (done) throw new Error('stream ended')
        text += decoder.decode(value)
      }
    }
    await until('event: ready')
    await f.ask({ login_hint: f.bob.email })
    const { id } = await f.ask()
    await until(`"id":"${id}","event":"requested"`)
    expect(text).not.toContain(f.bob.id)
    controller.abort()
    const anonymous = await fetch(`${f.direct}/approvals/events`)
    expect(anonymous.status).toBe(401)
  })

  // Last: it shuts the server down.
  it('ends open event streams when the server drains, so shutdown does not wait for them', async () => {
    const alice = await f.signedIn('alice')
    const res = await fetch(`${f.direct}/approvals/events`, {
      headers: { cookie: alice.jar.header() },
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toContain('event: ready')
    const stopped = f.server.shutdown({ graceMs: 60_000 })
    let done = false
    while (!done) done = (await reader.read()).done
    await stopped
  })
})

describe('approvals event stream and its session', () => {
  let f: InboxFixture

  beforeAll(async () => {
    f = await startInboxFixture()
  }, 60_000)

  afterAll(async () => {
    await f?.close()
  })

  it('closes a stream once its session has ended, at the next quiet interval', async () => {
    // The inbox routes on the fixture's real services, with a short quiet interval.
    const routes = createInboxRoutes({ ...f.deputy.deps, scopeSentence, keepAliveMs: 20 })
    const session = await startSession(f.deputy.deps, f.alice.id)
    const res = await routes.request('http://localhost/approvals/events', {
      headers: { cookie: `${SESSION_COOKIE}=${session.id}` },
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    while (!text.includes('keep-alive'))
      text += new TextDecoder().decode((await reader.read()).value)
    expect(text).toContain('event: ready')
    await endSession(f.deputy.deps, session.id)
    let done = false
    while (!done) done = (await reader.read()).done
  })
})

async function csrfOf(client: ReturnType<typeof httpBrowser>): Promise<string> {
  const account = await (await client.get('/account')).text()
  return hiddenField(account, 'csrf_token')
}
