import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { signIn } from '../../src/identity/login.js'
import { SESSION_COOKIE } from '../../src/identity/sessions.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser } from '../helpers/sign-in.js'

const ALICE = {
  email: 'alice@example.com',
  name: 'Alice Example',
  password: 'correct horse battery',
}
const CSRF_COOKIE = '__Host-deputy-csrf'

/** A clock the test moves by hand. */
function manualClock(start = Date.parse('2026-03-01T09:00:00Z')) {
  let now = start
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000
    },
  }
}

async function auditTypes(deputy: TestDeputy): Promise<{ type: string; reason: string | null }[]> {
  return deputy.deps.db
    .selectFrom('audit_events')
    .select(['type', 'reason'])
    .orderBy('seq')
    .execute() as Promise<{ type: string; reason: string | null }[]>
}

describe('sign-in page and sessions (issue 2 §5)', () => {
  let deputy: TestDeputy
  let clock: ReturnType<typeof manualClock>

  beforeEach(async () => {
    clock = manualClock()
    deputy = await startTestDeputy({ clock })
    await deputy.deps.users.create({ ...ALICE, roles: ['admin'] }, { type: 'system', id: 'test' })
  })
  afterEach(async () => {
    await deputy.dispose()
  })

  it('a sign-in whose login.succeeded record cannot be written starts no session', async () => {
    const failing = {
      ...deputy.deps,
      audit: {
        ...deputy.deps.audit,
        appendWith: () => Promise.reject(new Error('audit store unavailable')),
      },
    }
    await expect(
      signIn(failing, {
        email: ALICE.email,
        password: ALICE.password,
        address: '127.0.0.1',
        previousSessionId: undefined,
        requestId: null,
      }),
    ).rejects.toThrow('audit store unavailable')
    expect(await deputy.deps.db.selectFrom('sessions').selectAll().execute()).toEqual([])
    // Through the writer: the session and its record commit together.
    const started = await signIn(deputy.deps, {
      email: ALICE.email,
      password: ALICE.password,
      address: '127.0.0.1',
      previousSessionId: undefined,
      requestId: null,
    })
    expect(started.ok).toBe(true)
    expect(await deputy.deps.db.selectFrom('sessions').select('id_hash').execute()).toHaveLength(1)
    expect((await auditTypes(deputy)).map((e) => e.type)).toContain('login.succeeded')
  })

  it('signs in with the right password and shows the account page with name, email and roles', async () => {
    const b = browser(deputy)
    const response = await b.signIn(ALICE.email, ALICE.password)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/account')
    const account = await b.get('/account')
    expect(account.status).toBe(200)
    const page = await account.text()
    expect(page).toContain('Alice Example')
    expect(page).toContain('alice@example.com')
    expect(page).toContain('admin')
    expect(page).toContain('action="/logout"')
  })

  it('sends the session cookie as __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, without Domain', async () => {
    const b = browser(deputy)
    const response = await b.signIn(ALICE.email, ALICE.password)
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`))
    expect(cookie).toBeDefined()
    const attributes = (cookie ?? '').split(';').map((a) => a.trim().toLowerCase())
    expect(SESSION_COOKIE.startsWith('__Host-')).toBe(true)
    expect(attributes).toContain('secure')
    expect(attributes).toContain('httponly')
    expect(attributes).toContain('samesite=lax')
    expect(attributes).toContain('path=/')
    expect(attributes).toContain(`max-age=${deputy.config.sessionTtlSeconds}`)
    expect(attributes.some((a) => a.startsWith('domain'))).toBe(false)
    // Only the hash of the cookie value is stored.
    const value = b.jar.cookies.get(SESSION_COOKIE) ?? ''
    const rows = await deputy.deps.db.selectFrom('sessions').select('id_hash').execute()
    expect(rows).toHaveLength(1)
    expect(rows[0]?.id_hash).not.toBe(value)
  })

  it('binds the sign-in CSRF token to the browser with a __Host- cookie', async () => {
    const response = await deputy.app.request('http://localhost:8080/login')
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith(`${CSRF_COOKIE}=`))
    const attributes = (cookie ?? '').split(';').map((a) => a.trim().toLowerCase())
    expect(attributes).toEqual(expect.arrayContaining(['secure', 'httponly', 'path=/']))
    expect(attributes.some((a) => a.startsWith('domain'))).toBe(false)
  })

  it('refuses a sign-in without the CSRF field, and signs nobody in', async () => {
    const b = browser(deputy)
    await b.openLogin()
    const response = await b.post('/login', { email: ALICE.email, password: ALICE.password })
    expect(response.status).toBe(403)
    expect(await response.text()).toContain('Reload the page and try again')
    expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
    expect(await deputy.deps.db.selectFrom('sessions').selectAll().execute()).toHaveLength(0)
  })

  it('refuses a sign-in whose CSRF field does not match the browser cookie', async () => {
    const b = browser(deputy)
    const token = await b.openLogin()
    const other = browser(deputy)
    const otherToken = await other.openLogin()
    expect(otherToken).not.toBe(token)
    const response = await b.post('/login', {
      csrf_token: otherToken,
      email: ALICE.email,
      password: ALICE.password,
    })
    expect(response.status).toBe(403)
    expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
    // Without the cookie at all (a cross-site form cannot read or set it), the field alone fails too.
    const bare = await deputy.app.request('http://localhost:8080/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        csrf_token: token,
        email: ALICE.email,
        password: ALICE.password,
      }),
    })
    expect(bare.status).toBe(403)
    expect(bare.headers.getSetCookie().some((c) => c.startsWith(SESSION_COOKIE))).toBe(false)
  })

  it('accepts only urlencoded forms: JSON and multipart are refused', async () => {
    const b = browser(deputy)
    const csrf = await b.openLogin()
    const fields = { csrf_token: csrf, email: ALICE.email, password: ALICE.password }
    const json = await b.request('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fields),
    })
    expect(json.status).toBe(415)
    const multipart = new FormData()
    for (const [k, v] of Object.entries(fields)) multipart.set(k, v)
    const formData = await b.request('/login', { method: 'POST', body: multipart })
    expect(formData.status).toBe(415)
    expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
  })

  it('says the same thing for an unknown account and a wrong password', async () => {
    const b = browser(deputy)
    const unknown = await b.signIn('nobody@example.com', ALICE.password)
    const wrong = await b.signIn(ALICE.email, 'not the password')
    expect(unknown.status).toBe(wrong.status)
    const unknownText = await unknown.text()
    const wrongText = await wrong.text()
    expect(unknownText).toContain('Email or password is incorrect.')
    expect(wrongText).toContain('Email or password is incorrect.')
    expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
    // The reasons differ only in the audit chain.
    const events = await auditTypes(deputy)
    expect(events.filter((e) => e.type === 'login.failed').map((e) => e.reason)).toEqual([
      'unknown-account',
      'wrong-password',
    ])
  })

  it('refuses a disabled person with the generic message, even with the right password', async () => {
    await deputy.deps.users.setStatus(ALICE.email, 'disabled', { type: 'system', id: 'test' })
    const b = browser(deputy)
    const response = await b.signIn(ALICE.email, ALICE.password)
    expect(response.status).toBe(400)
    expect(await response.text()).toContain('Email or password is incorrect.')
    expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)
    const events = await auditTypes(deputy)
    expect(events.at(-1)).toEqual({ type: 'login.failed', reason: 'disabled' })
  })

  it('ends a signed-in session when the person is disabled', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, ALICE.password)
    await deputy.deps.users.setStatus(ALICE.email, 'disabled', { type: 'system', id: 'test' })
    const account = await b.get('/account')
    expect(account.status).toBe(303)
  })

  it('gives a new session id at sign-in and ends the one the browser came with', async () => {
    const first = browser(deputy)
    await first.signIn(ALICE.email, ALICE.password)
    const oldSession = first.jar.cookies.get(SESSION_COOKIE) ?? ''
    expect(oldSession).not.toBe('')

    // A second sign-in from a browser that already carries that session cookie.
    const second = browser(deputy)
    const csrf = await second.openLogin()
    second.jar.cookies.set(SESSION_COOKIE, oldSession)
    const response = await second.post('/login', {
      csrf_token: csrf,
      email: ALICE.email,
      password: ALICE.password,
    })
    expect(response.status).toBe(303)
    const newSession = second.jar.cookies.get(SESSION_COOKIE) ?? ''
    expect(newSession).not.toBe('')
    expect(newSession).not.toBe(oldSession)

    expect((await second.get('/account')).status).toBe(200)
    expect((await first.get('/account')).status).toBe(303)
  })

  it('ends a session when its lifetime is over', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, ALICE.password)
    clock.advance(deputy.config.sessionTtlSeconds - 60)
    expect((await b.get('/account')).status).toBe(200)
    clock.advance(60)
    expect((await b.get('/account')).status).toBe(303)
  })

  it('records when a session was last seen, at most once a minute', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, ALICE.password)
    const lastSeen = async () =>
      Number(
        (await deputy.deps.db.selectFrom('sessions').select('last_seen_at').executeTakeFirst())
          ?.last_seen_at,
      )
    const signedInAt = await lastSeen()
    clock.advance(30)
    await b.get('/account')
    expect(await lastSeen()).toBe(signedInAt)
    clock.advance(31)
    await b.get('/account')
    expect(await lastSeen()).toBe(signedInAt + 61_000)
  })

  it('signs out: the session ends on the server and the cookie is cleared', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, ALICE.password)
    const stolen = b.jar.cookies.get(SESSION_COOKIE) ?? ''
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(
      await (await b.get('/account')).text(),
    )?.[1]
    const response = await b.post('/logout', { csrf_token: csrf ?? '' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toMatch(/^\/login/)
    const cleared = response.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`))
    expect(cleared).toMatch(/Max-Age=0/i)
    // Replaying the old cookie value does not work: the session is gone server-side.
    const replay = await deputy.app.request('http://localhost:8080/account', {
      headers: { cookie: `${SESSION_COOKIE}=${stolen}` },
    })
    expect(replay.status).toBe(303)
    expect((await auditTypes(deputy)).some((e) => e.type === 'session.ended')).toBe(true)
  })

  it('refuses a sign-out without the session CSRF token, and the session lives on', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, ALICE.password)
    const response = await b.post('/logout', { csrf_token: 'forged' })
    expect(response.status).toBe(403)
    expect((await b.get('/account')).status).toBe(200)
  })

  it('sends a signed-out visitor of /account to the sign-in page, and back after signing in', async () => {
    const b = browser(deputy)
    const account = await b.get('/account')
    expect(account.status).toBe(303)
    expect(account.headers.get('location')).toBe('/login?return_to=%2Faccount')
    const page = await (await b.get('/login?return_to=%2Faccount%3Ftab%3Droles')).text()
    expect(page).toContain('name="return_to" value="/account?tab=roles"')
    const signedIn = await b.signIn(ALICE.email, ALICE.password, '/account?tab=roles')
    expect(signedIn.headers.get('location')).toBe('/account?tab=roles')
  })

  it.each([
    'https://evil.example/',
    '//evil.example/path',
    '/\\evil.example',
    '\\\\evil.example',
    '/.//evil.example',
    'javascript:alert(1)',
    '/\t/evil.example',
    'account',
  ])('refuses return_to %j and sends the person to /account instead', async (returnTo) => {
    const b = browser(deputy)
    const response = await b.signIn(ALICE.email, ALICE.password, returnTo)
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/account')
  })

  it("forbids framing of the sign-in page (frame-ancestors 'none')", async () => {
    const response = await deputy.app.request('http://localhost:8080/login')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('cache-control')).toBe('no-store')
  })

  it('serves the stylesheet the page links, as CSS', async () => {
    const page = await (await deputy.app.request('http://localhost:8080/login')).text()
    const href = /<link rel="stylesheet" href="([^"]+)"/.exec(page)?.[1] ?? ''
    expect(href).toMatch(/^\/assets\/.+\.css$/)
    const css = await deputy.app.request(`http://localhost:8080${href}`)
    expect(css.status).toBe(200)
    expect(css.headers.get('content-type')).toMatch(/^text\/css/)
  })

  it('never writes the password into the audit chain', async () => {
    const b = browser(deputy)
    await b.signIn(ALICE.email, 'a wrong guess 12345')
    await b.signIn(ALICE.email, ALICE.password)
    const rows = await deputy.deps.db.selectFrom('audit_events').selectAll().execute()
    const all = JSON.stringify(rows)
    expect(all).not.toContain('a wrong guess 12345')
    expect(all).not.toContain(ALICE.password)
    expect(rows.map((r) => r.type)).toEqual(
      expect.arrayContaining(['login.failed', 'login.succeeded']),
    )
  })
})

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`sign-in lockout on ${dialect.name}`, () => {
    let deputy: TestDeputy
    let clock: ReturnType<typeof manualClock>

    beforeEach(async () => {
      clock = manualClock()
      deputy = await startTestDeputy({
        clock,
        database: await dialect.create(),
        config: { loginMaxFailuresPerAddress: 5 },
      })
      await deputy.deps.users.create(ALICE, { type: 'system', id: 'test' })
    })
    afterEach(async () => {
      await deputy.dispose()
    })

    it('after repeated failures sign-in from there waits, says for how long, and lets the right password in once the wait is over', async () => {
      const b = browser(deputy)
      const max = deputy.config.loginMaxFailures
      for (let i = 1; i < max; i++) {
        const r = await b.signIn(ALICE.email, `wrong password ${i}`)
        expect(r.status).toBe(400)
      }
      const last = await b.signIn(ALICE.email, 'wrong password again')
      expect(last.status).toBe(429)
      expect(last.headers.get('retry-after')).toBe('1')
      expect(await last.text()).toContain(
        'Too many failed sign-in attempts. Try again in 1 second.',
      )

      // The right password is refused while the wait lasts, still saying why.
      const during = await b.signIn(ALICE.email, ALICE.password)
      expect(during.status).toBe(429)
      expect(await during.text()).toContain('Try again in 1 second.')
      expect(b.jar.cookies.has(SESSION_COOKIE)).toBe(false)

      clock.advance(1)
      const after = await b.signIn(ALICE.email, ALICE.password)
      expect(after.status).toBe(303)
      expect((await b.get('/account')).status).toBe(200)

      const events = await auditTypes(deputy)
      expect(events.filter((e) => e.type === 'login.locked-out')).toHaveLength(1)
      expect(events.some((e) => e.type === 'login.failed' && e.reason === 'locked')).toBe(true)
    })

    it('clears the count on success, so earlier mistakes do not add up to a lockout', async () => {
      const b = browser(deputy)
      const max = deputy.config.loginMaxFailures
      for (let i = 1; i < max; i++) await b.signIn(ALICE.email, `wrong password ${i}`)
      expect((await b.signIn(ALICE.email, ALICE.password)).status).toBe(303)
      const other = browser(deputy)
      for (let i = 1; i < max; i++) {
        expect((await other.signIn(ALICE.email, `wrong password ${i}`)).status).toBe(400)
      }
      expect((await other.signIn(ALICE.email, ALICE.password)).status).toBe(303)
    })

    it('locks an unknown account the same way, so lockout does not reveal which accounts exist', async () => {
      const b = browser(deputy)
      const max = deputy.config.loginMaxFailures
      for (let i = 1; i < max; i++) await b.signIn('nobody@example.com', `guess ${i}`)
      const last = await b.signIn('nobody@example.com', 'guess again')
      expect(last.status).toBe(429)
      expect(await last.text()).toContain('Too many failed sign-in attempts.')
    })

    it('counts failures per client address across accounts, read from the socket not from headers', async () => {
      const attacker = { incoming: { socket: { remoteAddress: '198.51.100.7' } } }
      const bystander = { incoming: { socket: { remoteAddress: '203.0.113.9' } } }
      const b = browser(deputy, attacker)
      const max = deputy.config.loginMaxFailuresPerAddress
      for (let i = 1; i <= max; i++) {
        // Spoofed forwarding headers must not give each attempt a fresh address.
        const csrf = await b.openLogin()
        await b.post(
          '/login',
          { csrf_token: csrf, email: `user${i}@example.com`, password: 'guess guess' },
          { 'x-forwarded-for': `192.0.2.${i}` },
        )
      }
      const refused = await b.signIn(ALICE.email, ALICE.password)
      expect(refused.status).toBe(429)
      // Alice signing in from her own address is not affected.
      const alice = await browser(deputy, bystander).signIn(ALICE.email, ALICE.password)
      expect(alice.status).toBe(303)
    })
  })
}
