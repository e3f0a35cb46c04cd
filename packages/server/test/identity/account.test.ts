import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeDevice } from '../../src/identity/device.js'
import { sha256 } from '../../src/lib/random.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { formClient, hiddenField } from '../helpers/sign-in.js'

// Issue 15 §2: the account page shows the person's profile (the name is theirs to change) and
// every session they hold, each of which they can sign out, or all but this one. Ending a session
// ends it: the other browser's next request is signed out.

const PASSWORD = 'correct horse battery'
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
const SYSTEM = { type: 'system', id: 'test' } as const

describe('describeDevice: the User-Agent summarised, never kept whole', () => {
  it.each([
    [FIREFOX_LINUX, 'Firefox on Linux'],
    [SAFARI_IPHONE, 'Safari on iPhone'],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
      'Edge on Windows',
    ],
    [
      'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
      'Chrome on Android',
    ],
    ['something else', 'An unknown browser on an unknown system'],
  ])('%s → %s', (ua, expected) => {
    expect(describeDevice(ua)).toBe(expected)
  })

  it('has nothing to say without the header', () => {
    expect(describeDevice(undefined)).toBeNull()
    expect(describeDevice('')).toBeNull()
  })
})

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `the account page: profile and sessions (issue 15 §2) on ${dialect.name}`,
    () => {
      let deputy: TestDeputy
      let n = 0

      beforeAll(async () => {
        deputy = await startTestDeputy({ database: await dialect.create() })
      })
      afterAll(async () => {
        await deputy.dispose()
      })

      /** A browser sending `userAgent` with every request, in process. */
      function browserAs(userAgent: string) {
        return formClient(
          async (path, init) => deputy.app.request(`http://localhost:8080${path}`, init),
          { 'user-agent': userAgent },
        )
      }

      /** A new person signed in from a Firefox on Linux (here) and a Safari on an iPhone. */
      async function person(roles: string[] = []) {
        n += 1
        const email = `sam${n}@example.com`
        const user = await deputy.deps.users.create(
          { email, name: `Sam ${n}`, password: PASSWORD, roles },
          SYSTEM,
        )
        const here = browserAs(FIREFOX_LINUX)
        const phone = browserAs(SAFARI_IPHONE)
        expect((await here.signIn(email, PASSWORD)).status).toBe(303)
        expect((await phone.signIn(email, PASSWORD)).status).toBe(303)
        const page = await (await here.get('/account')).text()
        return { email, user, here, phone, page, csrf: hiddenField(page, 'csrf_token') }
      }

      function handleOf(b: ReturnType<typeof browserAs>): string {
        const id = b.jar.cookies.get('__Host-deputy-session') ?? ''
        return sha256(id).slice(0, 16)
      }

      async function sessionEvents(userId: string) {
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['actor', 'reason', 'data'])
          .where('type', '=', 'session.ended')
          .orderBy('seq')
          .execute()
        return rows
          .map((r) => ({
            actor: JSON.parse(r.actor) as { id: string },
            reason: r.reason,
            data: JSON.parse(r.data ?? '{}') as { session?: string; from?: string },
          }))
          .filter((e) => e.actor.id === userId)
      }

      it('lists every session with its browser, start and last seen, this device marked; never a cookie value', async () => {
        const p = await person()
        const items = [
          ...p.page.matchAll(/<li data-session="([A-Za-z0-9_-]{16})">([\s\S]*?)<\/li>/g),
        ]
        expect(items.map((m) => m[1]).sort()).toEqual([handleOf(p.here), handleOf(p.phone)].sort())
        const mine = items.find((m) => m[1] === handleOf(p.here))?.[2] ?? ''
        const theirs = items.find((m) => m[1] === handleOf(p.phone))?.[2] ?? ''
        expect(mine).toContain('Firefox on Linux')
        expect(mine).toContain('This device')
        expect(theirs).toContain('Safari on iPhone')
        expect(theirs).not.toContain('This device')
        expect(theirs).toMatch(/Signed in with a password <time datetime="[^"]+">/)
        expect(theirs).toContain('last seen')
        for (const b of [p.here, p.phone]) {
          const id = b.jar.cookies.get('__Host-deputy-session') ?? ''
          expect(p.page).not.toContain(id)
          expect(p.page).not.toContain(sha256(id))
        }
        const stored = await deputy.deps.db
          .selectFrom('sessions')
          .select('device')
          .where('user_id', '=', p.user.id)
          .execute()
        expect(stored.map((s) => s.device).sort()).toEqual(['Firefox on Linux', 'Safari on iPhone'])
        expect(p.page).toContain('Sign out everywhere else')
      })

      it('signing out another session ends it: the phone’s next request is signed out, this one stays', async () => {
        const p = await person()
        const answer = await p.here.post('/account/sessions/sign-out', {
          csrf_token: p.csrf,
          session: handleOf(p.phone),
        })
        expect(answer.status).toBe(303)
        expect(answer.headers.get('location')).toBe('/account?done=signed-out')
        const phone = await p.phone.get('/account')
        expect(phone.status).toBe(303)
        expect(phone.headers.get('location')).toBe('/login?return_to=%2Faccount')
        const after = await (await p.here.get('/account?done=signed-out')).text()
        expect(after).toContain('That session was signed out.')
        // A notice is one of the fixed sentences: a name from Object.prototype shows none.
        for (const odd of ['constructor', '__proto__', 'toString']) {
          const page = await (await p.here.get(`/account?done=${odd}`)).text()
          expect(page).not.toContain('role="status"')
          expect(page).not.toContain('[object')
        }
        expect(after).not.toContain('Safari on iPhone')
        expect(after).toContain('You are signed in only here.')
        expect(await sessionEvents(p.user.id)).toEqual([
          {
            actor: expect.objectContaining({ id: p.user.id }),
            reason: 'signed out from the account page',
            data: { session: handleOf(p.phone), from: handleOf(p.here) },
          },
        ])
      })

      it('“Sign out everywhere else” ends every other session and keeps this one', async () => {
        const p = await person()
        const third = browserAs('curl/8.5.0')
        expect((await third.signIn(p.email, PASSWORD)).status).toBe(303)
        const answer = await p.here.post('/account/sessions/sign-out-others', {
          csrf_token: p.csrf,
        })
        expect(answer.headers.get('location')).toBe('/account?done=signed-out-others')
        expect((await p.phone.get('/account')).status).toBe(303)
        expect((await third.get('/account')).status).toBe(303)
        expect((await p.here.get('/account')).status).toBe(200)
        const ended = (await sessionEvents(p.user.id)).map((e) => e.data.session).sort()
        expect(ended).toEqual([handleOf(p.phone), handleOf(third)].sort())
        const again = await p.here.post('/account/sessions/sign-out-others', { csrf_token: p.csrf })
        expect(again.headers.get('location')).toBe('/account?done=no-others')
      })

      it('signing out this device’s own handle signs this browser out', async () => {
        const p = await person()
        const answer = await p.here.post('/account/sessions/sign-out', {
          csrf_token: p.csrf,
          session: handleOf(p.here),
        })
        expect(answer.headers.get('location')).toBe('/login?signed_out')
        expect((await p.here.get('/account')).status).toBe(303)
        expect((await p.phone.get('/account')).status).toBe(200)
      })

      it('refuses without the CSRF token, for another person’s or a made-up session, and a non-form body; nothing ends', async () => {
        const p = await person()
        const other = await person()
        const cases: [Record<string, string>, number, string][] = [
          [{ session: handleOf(p.phone) }, 403, 'This form has expired.'],
          [
            { csrf_token: 'x'.repeat(43), session: handleOf(p.phone) },
            403,
            'This form has expired.',
          ],
          [{ csrf_token: p.csrf, session: handleOf(other.phone) }, 404, 'You have no such session'],
          [{ csrf_token: p.csrf, session: '%' }, 404, 'You have no such session'],
          [{ csrf_token: p.csrf, session: '________________' }, 404, 'You have no such session'],
          [{ csrf_token: p.csrf, session: '' }, 404, 'You have no such session'],
        ]
        for (const [fields, status, text] of cases) {
          const answer = await p.here.post('/account/sessions/sign-out', fields)
          expect(answer.status, JSON.stringify(fields)).toBe(status)
          expect(await answer.text()).toContain(text)
        }
        const others = await p.here.post('/account/sessions/sign-out-others', {})
        expect(others.status).toBe(403)
        const json = await p.here.request('/account/sessions/sign-out-others', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ csrf_token: p.csrf }),
        })
        expect(json.status).toBe(415)
        for (const b of [p.phone, other.here, other.phone])
          expect((await b.get('/account')).status).toBe(200)
        expect(await sessionEvents(p.user.id)).toEqual([])
        expect(await sessionEvents(other.user.id)).toEqual([])
      })

      it('a signed-out browser is sent to sign in, and ends nothing', async () => {
        const p = await person()
        const stranger = browserAs(FIREFOX_LINUX)
        const answer = await stranger.post('/account/sessions/sign-out-others', {
          csrf_token: p.csrf,
        })
        expect(answer.status).toBe(303)
        expect(answer.headers.get('location')).toBe('/login?return_to=%2Faccount')
        expect((await p.phone.get('/account')).status).toBe(200)
      })

      it('the person changes their name; the change is audited with them as the actor', async () => {
        const p = await person()
        const answer = await p.here.post('/account/profile', {
          csrf_token: p.csrf,
          name: '  Samantha Example ',
        })
        expect(answer.status).toBe(303)
        expect(answer.headers.get('location')).toBe('/account?done=renamed')
        const page = await (await p.here.get('/account?done=renamed')).text()
        expect(page).toContain('Your name was changed.')
        expect(page).toContain('<dd>Samantha Example</dd>')
        expect((await deputy.deps.users.findById(p.user.id))?.name).toBe('Samantha Example')
        const events = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['actor', 'target'])
          .where('type', '=', 'user.renamed')
          .execute()
        const mine = events.filter((e) => JSON.parse(e.target ?? '{}').id === p.user.id)
        expect(mine.map((e) => JSON.parse(e.actor).id)).toEqual([p.user.id])
      })

      it('refuses an empty, too long or NUL-holding name and a missing CSRF token; the name stays', async () => {
        const p = await person()
        const cases: [Record<string, string>, number, string][] = [
          [{ csrf_token: p.csrf, name: '   ' }, 400, 'Not changed: name must not be empty.'],
          [
            { csrf_token: p.csrf, name: 'x'.repeat(201) },
            400,
            'Not changed: name must be at most 200 characters.',
          ],
          [
            { csrf_token: p.csrf, name: 'Sam\u0000' },
            400,
            'The form was not sent as Deputy built it.',
          ],
          [{ name: 'Mallory' }, 403, 'This form has expired.'],
        ]
        for (const [fields, status, text] of cases) {
          const answer = await p.here.post('/account/profile', fields)
          expect(answer.status, JSON.stringify(fields)).toBe(status)
          expect(await answer.text()).toContain(text)
        }
        expect((await deputy.deps.users.findById(p.user.id))?.name).toBe(p.user.name)
      })

      it('links to the console only for a person holding deputy:admin', async () => {
        const plain = await person()
        expect(plain.page).not.toContain('href="/admin"')
        const admin = await person(['admin'])
        expect(admin.page).toContain('<a href="/admin">Open the console</a>')
      })

      it('every person page carries the same navigation, the current page marked', async () => {
        const p = await person()
        const pages: [string, string][] = [
          ['/account', 'Account'],
          ['/account/agents', 'Your agents'],
          ['/approvals', 'Approvals'],
          ['/account/connections', 'Connected accounts'],
          ['/account/security', 'Security'],
          ['/account/notifications', 'Notifications'],
        ]
        for (const [path, label] of pages) {
          const html = await (await p.here.get(path)).text()
          const nav = /<nav aria-label="Your account">([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? ''
          expect(
            [...nav.matchAll(/href="([^"]+)"/g)].map((m) => m[1]),
            path,
          ).toEqual(pages.map(([href]) => href))
          expect(nav).toContain(`<a href="${path}" aria-current="page">${label}</a>`)
        }
      })
    },
  )
}
