import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { AppEnv } from '../http/env.js'
import { addressKey, type RateLimits } from '../http/rate-limits.js'
import { randomToken, safeEqual } from '../lib/random.js'
import { isRateLimited } from '../lib/rate-limit.js'
import { assetRoutes } from '../ui/assets.js'
import { loginPage } from '../ui/login-page.js'
import { messagePage } from '../ui/message-page.js'
import { createAccountRoutes } from './account-routes.js'
import { type LoginDeps, signIn, signOut } from './login.js'
import { DEFAULT_RETURN_TO, LOGIN_CSRF_COOKIE, safeReturnTo, signInHref } from './return-to.js'
import { setSessionCookie } from './session-cookie.js'
import { cookieValue, readSession, SESSION_COOKIE } from './sessions.js'
import type { Users } from './users.js'

/** The one message for every refused email/password pair, so it never tells which part was wrong. */
export const INVALID_CREDENTIALS = 'Email or password is incorrect.'

export { DEFAULT_RETURN_TO, LOGIN_CSRF_COOKIE, safeReturnTo }

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const FORM_FIELDS = ['csrf_token', 'return_to', 'email', 'password'] as const

function html(
  c: Context<AppEnv>,
  page: string,
  status: number,
  headers: Record<string, string> = {},
): Response {
  return c.html(page, status as 200, { 'Cache-Control': 'no-store', ...headers })
}

type FormResult = { ok: true; form: Record<string, string> } | { ok: false; response: Response }

/** Reads a urlencoded form; anything else, or a field sent twice, is refused with a page. */
async function readForm(
  c: Context<AppEnv>,
  fields: readonly string[],
  back: string,
): Promise<FormResult> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') {
    return {
      ok: false,
      response: html(
        c,
        messagePage({
          title: 'Form not accepted',
          text: 'This address accepts only a submitted web form.',
          link: { href: back, label: 'Go back' },
        }),
        415,
      ),
    }
  }
  const params = new URLSearchParams(await c.req.text())
  const form: Record<string, string> = {}
  for (const name of fields) {
    const values = params.getAll(name)
    if (values.length > 1) {
      return {
        ok: false,
        response: html(
          c,
          messagePage({
            title: 'Form not accepted',
            text: `The form sent "${name}" more than once. Reload the page and try again.`,
            link: { href: back, label: 'Go back' },
          }),
          400,
        ),
      }
    }
    if (values[0] !== undefined) form[name] = values[0]
  }
  return { ok: true, form }
}

function csrfRefused(c: Context<AppEnv>, back: string): Response {
  return html(
    c,
    messagePage({
      title: 'Form expired',
      text: 'This form has expired or did not come from Deputy. Reload the page and try again.',
      link: { href: back, label: 'Reload the sign-in page' },
    }),
    403,
  )
}

function lockoutText(seconds: number): string {
  const [n, unit] = seconds < 60 ? [seconds, 'second'] : [Math.ceil(seconds / 60), 'minute']
  return `Too many failed sign-in attempts. Try again in ${n} ${unit}${n === 1 ? '' : 's'}.`
}

function tooManyText(seconds: number): string {
  return `Too many sign-in attempts came from your network. Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`
}

/** The login CSRF secret this browser holds, or a new one set as a cookie. */
function loginCsrfToken(c: Context<AppEnv>): string {
  const existing = getCookie(c, LOGIN_CSRF_COOKIE)
  if (existing && TOKEN_SHAPE.test(existing)) return existing
  const token = randomToken(32)
  setCookie(c, LOGIN_CSRF_COOKIE, token, {
    secure: true,
    httpOnly: true,
    sameSite: 'Lax',
    path: '/',
  })
  return token
}

/** Sign-in, sign-out and the account pages (issue 2 §5, issue 15 §2), plus the stylesheet. */
export function createIdentityRoutes(
  deps: LoginDeps & {
    /** The account page renames the person (identity/account-routes.ts). */
    users: LoginDeps['users'] & Pick<Users, 'setName'>
    /**
     * The providers the login page offers buttons for (providers/sign-in-routes.ts serves them;
     * identity/ knows them only through this, so it depends on no provider module).
     */
    signInProviders(): Promise<{ name: string; displayName: string }[]>
    /** The per-address sign-in limit (`signInRateLimit`), shared with provider sign-in starts. */
    rateLimits: Pick<RateLimits, 'take'>
  },
): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.route('/', assetRoutes())

  app.get('/login', async (c) => {
    const returnTo = safeReturnTo(c.req.query('return_to'))
    // `fresh`: a signed-in person is asked for their password (or a passkey) again: a high-risk
    // approval needs one within minutes; signing in starts a new session, whose start is that.
    const fresh = c.req.query('fresh') !== undefined
    const session = await readSession(deps, c.req.raw)
    if (session && !fresh) return c.redirect(returnTo, 303)
    const csrfToken = loginCsrfToken(c)
    const message =
      session && fresh
        ? {
            kind: 'notice' as const,
            text: 'Enter your password again, or use a passkey, to confirm it is you.',
          }
        : c.req.query('signed_out') !== undefined
          ? { kind: 'notice' as const, text: 'You have signed out.' }
          : undefined
    return html(
      c,
      loginPage({
        csrfToken,
        returnTo,
        message,
        // Confirming it is you takes the password: a provider sign-in would not ask for anything.
        providers: session && fresh ? [] : await deps.signInProviders(),
        ...(session && fresh && { email: session.user.email, confirming: true }),
      }),
      200,
    )
  })

  app.post('/login', async (c) => {
    const providers = await deps.signInProviders()
    const read = await readForm(c, FORM_FIELDS, '/login')
    if (!read.ok) return read.response
    const { form } = read
    const returnTo = safeReturnTo(form.return_to)
    const cookieToken = getCookie(c, LOGIN_CSRF_COOKIE)
    if (!cookieToken || !form.csrf_token || !safeEqual(cookieToken, form.csrf_token)) {
      return csrfRefused(c, signInHref(returnTo))
    }
    const email = (form.email ?? '').trim()
    const password = form.password ?? ''
    const page = (status: number, text: string, headers?: Record<string, string>) =>
      html(
        c,
        loginPage({
          csrfToken: cookieToken,
          returnTo,
          email,
          providers,
          message: { kind: 'error', text },
        }),
        status,
        headers,
      )
    if (!email || !password) return page(400, 'Enter your email and password.')
    // No email or password holds one, and PostgreSQL text cannot: the person's mistake, not ours.
    if (email.includes('\u0000') || password.includes('\u0000')) {
      return html(
        c,
        loginPage({
          csrfToken: cookieToken,
          returnTo,
          email: email.replaceAll('\u0000', ''),
          providers,
          message: {
            kind: 'error',
            text: 'The form held a character Deputy does not accept (a NUL byte).',
          },
        }),
        400,
      )
    }

    // Each attempt costs an argon2id hash: counted per address before it is computed, besides
    // the per-account throttle of failures (which counts only what was wrong).
    try {
      await deps.rateLimits.take('sign-in', addressKey(c.get('clientAddress')))
    } catch (err) {
      if (!isRateLimited(err)) throw err
      return page(429, tooManyText(err.retryAfterSeconds), {
        'Retry-After': String(err.retryAfterSeconds),
      })
    }
    const result = await signIn(deps, {
      email,
      password,
      address: c.get('clientAddress'),
      previousSessionId: cookieValue(c.req.raw, SESSION_COOKIE),
      requestId: c.get('requestId') ?? null,
      userAgent: c.req.header('user-agent'),
    })
    if (!result.ok) {
      if (result.locked) {
        return page(429, lockoutText(result.retryAfterSeconds), {
          'Retry-After': String(result.retryAfterSeconds),
        })
      }
      return page(400, INVALID_CREDENTIALS)
    }
    setSessionCookie(c, result.session.id, deps.config.sessionTtlSeconds)
    // The sign-in form's secret has done its job; the session carries its own from here on.
    deleteCookie(c, LOGIN_CSRF_COOKIE, { secure: true, path: '/' })
    c.header('Cache-Control', 'no-store')
    return c.redirect(returnTo, 303)
  })

  app.post('/logout', async (c) => {
    const read = await readForm(c, ['csrf_token'], DEFAULT_RETURN_TO)
    if (!read.ok) return read.response
    const session = await readSession(deps, c.req.raw)
    const id = cookieValue(c.req.raw, SESSION_COOKIE)
    if (session && id) {
      const sent = read.form.csrf_token
      if (!sent || !safeEqual(sent, session.csrfToken)) return csrfRefused(c, DEFAULT_RETURN_TO)
      await signOut(deps, id, c.get('requestId') ?? null)
    }
    deleteCookie(c, SESSION_COOKIE, { secure: true, path: '/' })
    c.header('Cache-Control', 'no-store')
    return c.redirect('/login?signed_out', 303)
  })

  app.route('/', createAccountRoutes(deps))

  return app
}
