import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { z } from 'zod'
import type { AppEnv } from '../http/env.js'
import { isDeputyError } from '../lib/errors.js'
import { FormError, readForm } from '../lib/form.js'
import { JsonInputError, parseJsonInput } from '../lib/json-input.js'
import { safeEqual } from '../lib/random.js'
import { messagePage } from '../ui/message-page.js'
import { securityPage } from '../ui/security-page.js'
import { checkPassword, type LoginDeps } from './login.js'
import {
  PASSKEY_CHALLENGE_COOKIE,
  PASSKEY_CHALLENGE_SECONDS,
  PasskeyError,
  type Passkeys,
} from './passkeys.js'
import { MIN_PASSWORD_LENGTH } from './passwords.js'
import { LOGIN_CSRF_COOKIE, safeReturnTo, signInHref } from './return-to.js'
import { setSessionCookie } from './session-cookie.js'
import {
  type CurrentSession,
  cookieValue,
  readSession,
  SESSION_COOKIE,
  type SessionDeps,
} from './sessions.js'
import type { Users } from './users.js'

// The passkey endpoints (issue 15 §3). The security page (/account/security) lists, adds and
// removes a signed-in person's passkeys and changes their password; /login/passkey signs in
// with a passkey. The WebAuthn steps
// are JSON calls from the passkey script (ui/passkey-script.ts), each with the page's CSRF token
// in X-CSRF-Token; removing is a plain form, so it works without script.

/** What the passkey routes read. */
export interface PasskeyRouteDeps extends SessionDeps, LoginDeps {
  config: SessionDeps['config'] & LoginDeps['config'] & { sessionTtlSeconds: number }
  passkeys: Passkeys
  users: LoginDeps['users'] & Pick<Users, 'setPassword'>
}

const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*$/)
const extensions = z.record(z.string(), z.unknown())

/** A registration response (WebAuthn `PublicKeyCredential.toJSON()` of `create()`). */
const RegistrationResponseSchema = z.looseObject({
  id: b64url.min(1).max(1366),
  rawId: b64url,
  type: z.literal('public-key'),
  clientExtensionResults: extensions,
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  response: z.looseObject({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
})

/** An authentication response (`PublicKeyCredential.toJSON()` of `get()`). */
const AuthenticationResponseSchema = z.looseObject({
  id: b64url.min(1).max(1366),
  rawId: b64url,
  type: z.literal('public-key'),
  clientExtensionResults: extensions,
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  response: z.looseObject({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: b64url.optional(),
  }),
})

const RegisterBody = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'give the passkey a name')
    .max(64, 'a passkey name has at most 64 characters'),
  response: RegistrationResponseSchema,
})
const SignInBody = z.object({
  response: AuthenticationResponseSchema,
  return_to: z.string().max(2048).optional(),
})

const CREDENTIAL_ID = /^[A-Za-z0-9_-]{1,1366}$/

function jsonError(c: Context<AppEnv>, status: number, error: string, message: string): Response {
  return c.json({ error, message }, status as 400, { 'Cache-Control': 'no-store' })
}

type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response }

/** Reads a JSON body (application/json only, within lib/json-input's bounds) against a schema. */
async function readJson<T>(c: Context<AppEnv>, schema: z.ZodType<T>): Promise<Parsed<T>> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json')
    return {
      ok: false,
      response: jsonError(c, 415, 'invalid_request', 'send the body as application/json'),
    }
  let raw: unknown
  try {
    raw = parseJsonInput(await c.req.text())
  } catch (err) {
    if (!(err instanceof JsonInputError)) throw err
    return { ok: false, response: jsonError(c, 400, 'invalid_request', err.message) }
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue?.path.join('.') || 'the body'
    return {
      ok: false,
      response: jsonError(c, 400, 'invalid_request', `${field}: ${issue?.message ?? 'invalid'}`),
    }
  }
  return { ok: true, value: parsed.data }
}

/** The header the passkey script sends, compared with the secret the page was rendered with. */
function csrfOk(c: Context<AppEnv>, expected: string | undefined): boolean {
  const sent = c.req.header('x-csrf-token')
  return !!sent && !!expected && safeEqual(sent, expected)
}

function page(c: Context<AppEnv>, body: string, status = 200): Response {
  return c.html(body, status as 200, { 'Cache-Control': 'no-store' })
}

/** The security page and the passkey sign-in. */
export function createPasskeyRoutes(deps: PasskeyRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const { passkeys } = deps

  const showSecurity = async (
    c: Context<AppEnv>,
    session: CurrentSession,
    notice?: { kind: 'error' | 'notice'; text: string },
    status = 200,
  ) => {
    const list = await passkeys.list(session.user.id)
    return page(
      c,
      securityPage({
        csrfToken: session.csrfToken,
        notice,
        hasPassword: (await deps.users.passwordHashOf(session.user.id)) !== null,
        passkeys: list.map((p) => ({
          credentialId: p.credentialId,
          name: p.name,
          createdAt: new Date(p.createdAt).toISOString(),
          lastUsedAt: p.lastUsedAt === null ? null : new Date(p.lastUsedAt).toISOString(),
        })),
      }),
      status,
    )
  }

  app.get('/account/security', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(signInHref('/account/security'), 303)
    const query = c.req.query()
    const notice =
      'added' in query
        ? { kind: 'notice' as const, text: 'Your passkey was added.' }
        : 'removed' in query
          ? { kind: 'notice' as const, text: 'The passkey was removed.' }
          : 'password-changed' in query
            ? {
                kind: 'notice' as const,
                text: 'Your password was changed. Your other sessions were signed out.',
              }
            : undefined
    return showSecurity(c, session, notice)
  })

  app.post('/account/security/passkeys/options', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return jsonError(c, 401, 'login_required', 'sign in to add a passkey')
    if (!csrfOk(c, session.csrfToken))
      return jsonError(c, 403, 'csrf_token_invalid', 'send the X-CSRF-Token header of this session')
    try {
      const options = await passkeys.registrationOptions(session)
      return c.json({ options }, 200, { 'Cache-Control': 'no-store' })
    } catch (err) {
      if (err instanceof PasskeyError) return jsonError(c, 409, 'too_many_passkeys', err.message)
      throw err
    }
  })

  app.post('/account/security/passkeys', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return jsonError(c, 401, 'login_required', 'sign in to add a passkey')
    if (!csrfOk(c, session.csrfToken))
      return jsonError(c, 403, 'csrf_token_invalid', 'send the X-CSRF-Token header of this session')
    const body = await readJson(c, RegisterBody)
    if (!body.ok) return body.response
    try {
      const passkey = await passkeys.register(session, {
        name: body.value.name,
        response: body.value.response as unknown as RegistrationResponseJSON,
        requestId: c.get('requestId') ?? null,
      })
      return c.json({ credential_id: passkey.credentialId, name: passkey.name }, 201, {
        'Cache-Control': 'no-store',
      })
    } catch (err) {
      if (err instanceof PasskeyError) return jsonError(c, 400, 'passkey_refused', err.message)
      throw err
    }
  })

  /** A security-page form and the session that sent it, or the answer when either is missing. */
  const securityForm = async (
    c: Context<AppEnv>,
  ): Promise<
    { form: Awaited<ReturnType<typeof readForm>>; session: CurrentSession } | { response: Response }
  > => {
    let form: Awaited<ReturnType<typeof readForm>>
    try {
      form = await readForm(c.req)
    } catch (err) {
      if (!(err instanceof FormError)) throw err
      return {
        response: page(
          c,
          messagePage({
            title: 'Form not accepted',
            text: 'The form was not sent as Deputy built it. Reload the page and try again.',
            link: { href: '/account/security', label: 'Back to security' },
          }),
          err.problem === 'not-form' ? 415 : 400,
        ),
      }
    }
    const session = await readSession(deps, c.req.raw)
    if (!session)
      return {
        response: c.redirect(signInHref('/account/security'), 303),
      }
    return { form, session }
  }

  app.post('/account/security/passkeys/remove', async (c) => {
    const read = await securityForm(c)
    if ('response' in read) return read.response
    const { form, session } = read
    if (!safeEqual(form.get('csrf_token') ?? '', session.csrfToken))
      return showSecurity(
        c,
        session,
        { kind: 'error', text: 'This form has expired. Reload the page and try again.' },
        403,
      )
    const id = form.get('credential_id') ?? ''
    // Another person's passkey is as unknown as none: nothing tells them it exists.
    const removed =
      CREDENTIAL_ID.test(id) &&
      (await passkeys.remove(session.user, id, c.get('requestId') ?? null))
    if (!removed)
      return showSecurity(
        c,
        session,
        { kind: 'error', text: 'You have no such passkey; nothing was removed.' },
        404,
      )
    c.header('Cache-Control', 'no-store')
    return c.redirect('/account/security?removed', 303)
  })

  // A password change asks for the current password, checked exactly like a sign-in's (the
  // same throttle, the same records), so a session left open is no way to guess it unthrottled
  // or to take the account over by setting a new one. Every other session ends with the change.
  app.post('/account/security/password', async (c) => {
    const read = await securityForm(c)
    if ('response' in read) return read.response
    const { form, session } = read
    const refuse = (status: number, text: string, headers: Record<string, string> = {}) => {
      for (const [name, value] of Object.entries(headers)) c.header(name, value)
      return showSecurity(c, session, { kind: 'error', text }, status)
    }
    if (!safeEqual(form.get('csrf_token') ?? '', session.csrfToken))
      return refuse(403, 'This form has expired. Reload the page and try again.')
    if ((await deps.users.passwordHashOf(session.user.id)) === null)
      return refuse(
        409,
        'You sign in without a password here (with a provider or a passkey); there is none to change.',
      )
    const current = form.get('current_password') ?? ''
    const next = form.get('new_password') ?? ''
    if (next.length < MIN_PASSWORD_LENGTH)
      return refuse(400, `The new password must be at least ${MIN_PASSWORD_LENGTH} characters.`)
    if (next.length > 1024) return refuse(400, 'The new password is longer than 1,024 characters.')
    if (next !== (form.get('confirm_password') ?? ''))
      return refuse(400, 'The new password and its confirmation differ.')
    const checked = await checkPassword(deps, {
      email: session.user.email,
      password: current,
      address: c.get('clientAddress'),
      requestId: c.get('requestId') ?? null,
      method: 'password-change',
    })
    if (!checked.ok) {
      if (checked.locked)
        return refuse(
          429,
          `Too many wrong passwords. Try again in ${checked.retryAfterSeconds} seconds.`,
          { 'Retry-After': String(checked.retryAfterSeconds) },
        )
      return refuse(400, 'Your current password is not correct; nothing was changed.')
    }
    try {
      await deps.users.setPassword(
        session.user.email,
        next,
        { type: 'user', id: session.user.id, label: session.user.email },
        { keepSession: session.idHash },
      )
    } catch (err) {
      if (isDeputyError(err)) return refuse(400, err.message)
      throw err
    }
    await checked.settle()
    c.header('Cache-Control', 'no-store')
    return c.redirect('/account/security?password-changed', 303)
  })

  // Sign-in with a passkey. The login page's CSRF secret (its cookie) must come back in the
  // header, as it must in the form's field for a password.
  app.post('/login/passkey/options', async (c) => {
    if (!csrfOk(c, getCookie(c, LOGIN_CSRF_COOKIE)))
      return jsonError(c, 403, 'csrf_token_invalid', 'reload the sign-in page and try again')
    const { options, cookie } = await passkeys.signInOptions()
    setCookie(c, PASSKEY_CHALLENGE_COOKIE, cookie, {
      secure: true,
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      maxAge: PASSKEY_CHALLENGE_SECONDS,
    })
    return c.json({ options }, 200, { 'Cache-Control': 'no-store' })
  })

  app.post('/login/passkey', async (c) => {
    if (!csrfOk(c, getCookie(c, LOGIN_CSRF_COOKIE)))
      return jsonError(c, 403, 'csrf_token_invalid', 'reload the sign-in page and try again')
    const body = await readJson(c, SignInBody)
    if (!body.ok) return body.response
    const cookie = getCookie(c, PASSKEY_CHALLENGE_COOKIE)
    // One answer per challenge, whatever happens next.
    deleteCookie(c, PASSKEY_CHALLENGE_COOKIE, { secure: true, path: '/' })
    let result: Awaited<ReturnType<Passkeys['signIn']>>
    try {
      result = await passkeys.signIn({
        response: body.value.response as unknown as AuthenticationResponseJSON,
        cookie,
        address: c.get('clientAddress'),
        previousSessionId: cookieValue(c.req.raw, SESSION_COOKIE),
        requestId: c.get('requestId') ?? null,
        userAgent: c.req.header('user-agent'),
      })
    } catch (err) {
      if (err instanceof PasskeyError) return jsonError(c, 400, 'passkey_refused', err.message)
      throw err
    }
    setSessionCookie(c, result.session.id, deps.config.sessionTtlSeconds)
    deleteCookie(c, LOGIN_CSRF_COOKIE, { secure: true, path: '/' })
    // The script goes there itself: the same return_to rules as the password form.
    return c.json({ redirect: safeReturnTo(body.value.return_to) }, 200, {
      'Cache-Control': 'no-store',
    })
  })

  return app
}
