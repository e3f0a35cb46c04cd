import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

// Issue 15 §2: the security page changes the person's own password. The current password is
// checked like a sign-in's (same throttle, same records); the change signs out every other
// session and keeps this one.

const OLD = 'correct horse battery'
const NEW = 'staple battery horse correct'

describe('changing one’s password on /account/security (issue 15 §2)', () => {
  let deputy: TestDeputy
  let n = 0

  beforeAll(async () => {
    deputy = await startTestDeputy({ config: { loginMaxFailures: 3, loginLockoutSeconds: 60 } })
  })
  afterAll(async () => {
    await deputy.dispose()
  })

  /** A new person with the old password, signed in from two browsers. */
  async function person() {
    n += 1
    const email = `pat${n}@example.com`
    const user = await deputy.deps.users.create(
      { email, name: `Pat ${n}`, password: OLD },
      { type: 'system', id: 'test' },
    )
    const here = browser(deputy)
    const elsewhere = browser(deputy)
    expect((await here.signIn(email, OLD)).status).toBe(303)
    expect((await elsewhere.signIn(email, OLD)).status).toBe(303)
    const page = await (await here.get('/account/security')).text()
    return { email, user, here, elsewhere, csrf: hiddenField(page, 'csrf_token') }
  }

  function change(
    b: ReturnType<typeof browser>,
    fields: Partial<
      Record<'csrf_token' | 'current_password' | 'new_password' | 'confirm_password', string>
    >,
  ) {
    return b.post('/account/security/password', fields as Record<string, string>)
  }

  async function passwordWorks(email: string, password: string): Promise<boolean> {
    return (await browser(deputy).signIn(email, password)).status === 303
  }

  it('changes the password: the new one signs in, the old one not; other sessions end, this one stays', async () => {
    const p = await person()
    const answer = await change(p.here, {
      csrf_token: p.csrf,
      current_password: OLD,
      new_password: NEW,
      confirm_password: NEW,
    })
    expect(answer.status).toBe(303)
    expect(answer.headers.get('location')).toBe('/account/security?password-changed')
    const shown = await (await p.here.get('/account/security?password-changed')).text()
    expect(shown).toContain('Your password was changed. Your other sessions were signed out.')
    // The other browser is signed out; this one is not.
    expect((await p.elsewhere.get('/account')).status).toBe(303)
    expect((await p.here.get('/account')).status).toBe(200)
    expect(await passwordWorks(p.email, OLD)).toBe(false)
    expect(await passwordWorks(p.email, NEW)).toBe(true)
    const events = await deputy.deps.db
      .selectFrom('audit_events')
      .select(['actor', 'target'])
      .where('type', '=', 'user.password-changed')
      .execute()
    const mine = events.filter((e) => JSON.parse(e.target ?? '{}').id === p.user.id)
    expect(mine.map((e) => JSON.parse(e.actor).id)).toEqual([p.user.id])
  })

  it('refuses a wrong current password, a short or unconfirmed new one, and a missing CSRF token; nothing changes', async () => {
    const p = await person()
    const cases: [Record<string, string>, number, string][] = [
      [
        { csrf_token: 'forged', current_password: OLD, new_password: NEW, confirm_password: NEW },
        403,
        'This form has expired',
      ],
      [
        {
          csrf_token: p.csrf,
          current_password: 'not it at all',
          new_password: NEW,
          confirm_password: NEW,
        },
        400,
        'Your current password is not correct; nothing was changed.',
      ],
      [
        {
          csrf_token: p.csrf,
          current_password: OLD,
          new_password: 'short',
          confirm_password: 'short',
        },
        400,
        'The new password must be at least 10 characters.',
      ],
      [
        {
          csrf_token: p.csrf,
          current_password: OLD,
          new_password: NEW,
          confirm_password: `${NEW}!`,
        },
        400,
        'The new password and its confirmation differ.',
      ],
    ]
    for (const [fields, status, text] of cases) {
      const answer = await change(p.here, fields)
      expect(answer.status).toBe(status)
      expect(await answer.text()).toContain(text)
    }
    expect(await passwordWorks(p.email, OLD)).toBe(true)
    expect((await p.elsewhere.get('/account')).status).toBe(200)
    // The wrong current password is recorded like a wrong password at sign-in.
    const failed = await deputy.deps.db
      .selectFrom('audit_events')
      .select(['actor', 'reason', 'data'])
      .where('type', '=', 'login.failed')
      .execute()
    const mine = failed.filter((f) => JSON.parse(f.actor).id === p.user.id)
    expect(mine.map((f) => [f.reason, JSON.parse(f.data).method])).toEqual([
      ['wrong-password', 'password-change'],
    ])
  })

  it('guesses at the current password are throttled like sign-ins: past the limit, 429 with Retry-After', async () => {
    const p = await person()
    const guess = (password: string) =>
      change(p.here, {
        csrf_token: p.csrf,
        current_password: password,
        new_password: NEW,
        confirm_password: NEW,
      })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await guess(`guess number ${i}`)).status)
    expect(statuses.slice(0, 2)).toEqual([400, 400])
    expect(statuses.at(-1)).toBe(429)
    // Even the right password waits now: the throttle is the sign-in's, per account and address.
    const right = await guess(OLD)
    expect(right.status).toBe(429)
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await right.text()).toContain('Too many wrong passwords.')
  })

  it('a person without a password (provider or passkey sign-in only) sees no form and cannot set one here', async () => {
    n += 1
    const user = await deputy.deps.users.create(
      { email: `nopass${n}@example.com`, name: 'No Pass' },
      { type: 'system', id: 'test' },
    )
    const session = await (await import('../../src/identity/sessions.js')).startSession(
      deputy.deps,
      user.id,
      'provider:github',
    )
    const b = browser(deputy)
    b.jar.cookies.set('__Host-deputy-session', session.id)
    const page = await (await b.get('/account/security')).text()
    expect(page).toContain('You sign in without a password here')
    expect(page).not.toContain('action="/account/security/password"')
    const answer = await change(b, {
      csrf_token: session.csrfToken,
      current_password: '',
      new_password: NEW,
      confirm_password: NEW,
    })
    expect(answer.status).toBe(409)
    expect(await deputy.deps.users.passwordHashOf(user.id)).toBeNull()
  })
})
