import type { Context } from 'hono'
import type { Actor } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { signInHref } from '../identity/return-to.js'
import { ADMIN_PERMISSION } from '../identity/roles.js'
import { type CurrentSession, readSession, type SessionDeps } from '../identity/sessions.js'
import { isDeputyError } from '../lib/errors.js'
import { type Form, FormError, readForm } from '../lib/form.js'
import { JsonInputError, parseJsonInput } from '../lib/json-input.js'
import { safeEqual } from '../lib/random.js'
import { messagePage } from '../ui/message-page.js'

/** Who is using the console: their session, and how the audit log names them. */
export interface ConsoleUser {
  session: CurrentSession
  /** The administrator as the actor of every change made through the console. */
  actor: Actor
  requestId: string | null
}

type Handler = (c: Context<AppEnv>) => Promise<Response>

/** A console answer, never cached (pages show people and keys). */
export function html(c: Context<AppEnv>, page: string, status = 200): Response {
  return c.html(page, status as 200, { 'Cache-Control': 'no-store' })
}

function refusal(c: Context<AppEnv>, status: number, title: string, text: string, back: string) {
  return html(c, messagePage({ title, text, link: { href: back, label: 'Go back' } }), status)
}

/**
 * The console's gate: a signed-in person (else the sign-in page, coming back here) who is active
 * and holds `deputy:admin` (else a 403 page saying so), the same rule as the admin API's session
 * gate (admin/auth.ts).
 */
async function admit(
  deps: SessionDeps,
  c: Context<AppEnv>,
  returnTo: string,
): Promise<ConsoleUser | Response> {
  const session = await readSession(deps, c.req.raw)
  if (!session) return c.redirect(signInHref(returnTo), 303)
  const { user } = session
  if (!user.permissions.includes(ADMIN_PERMISSION)) {
    return html(
      c,
      messagePage({
        title: 'Administrators only',
        text: `The console is for administrators, and ${user.email} does not hold the ${ADMIN_PERMISSION} permission. Ask an administrator for the admin role.`,
        link: { href: '/account', label: 'Go to your account' },
      }),
      403,
    )
  }
  return {
    session,
    actor: { type: 'user', id: user.id, label: user.email },
    requestId: c.get('requestId') ?? null,
  }
}

/** A console page (GET): the gate, then `render`. */
export function consoleView(
  deps: SessionDeps,
  render: (c: Context<AppEnv>, admin: ConsoleUser) => Promise<Response>,
): Handler {
  return async (c) => {
    const url = new URL(c.req.url)
    const admitted = await admit(deps, c, `${url.pathname}${url.search}`)
    if (admitted instanceof Response) return admitted
    return render(c, admitted)
  }
}

/**
 * A console change (POST of a form): the gate, a urlencoded form with each field once, the
 * session's CSRF token in `csrf_token` (else 403, nothing changed), then `act`. A domain refusal
 * (bad input, a conflict, something gone) is one line on a page with the way back; `back` names
 * the page the form came from.
 */
export function consoleAction(
  deps: SessionDeps,
  back: (c: Context<AppEnv>) => string,
  act: (c: Context<AppEnv>, admin: ConsoleUser, form: Form) => Promise<Response>,
  repeatable?: ReadonlySet<string>,
): Handler {
  return async (c) => {
    const to = back(c)
    const admitted = await admit(deps, c, to)
    if (admitted instanceof Response) return admitted
    let form: Form
    try {
      form = await readForm(
        { header: (n) => c.req.header(n), text: () => c.req.text() },
        repeatable,
      )
    } catch (err) {
      if (!(err instanceof FormError)) throw err
      return err.problem === 'not-form'
        ? refusal(
            c,
            415,
            'Form not accepted',
            'This address accepts only a submitted web form.',
            to,
          )
        : refusal(c, 400, 'Form not accepted', `The form was not accepted: ${err.message}.`, to)
    }
    const sent = form.get('csrf_token')
    if (!sent || !safeEqual(sent, admitted.session.csrfToken)) {
      return refusal(
        c,
        403,
        'Form expired',
        'This form has expired or did not come from Deputy. Reload the page and try again.',
        to,
      )
    }
    try {
      return await act(c, admitted, form)
    } catch (err) {
      if (isDeputyError(err) && err.status < 500)
        return refusal(c, err.status, 'Not changed', capitalise(err.message), to)
      throw err
    }
  }
}

/**
 * A console endpoint a page's script calls with JSON (validation as one types): the same gate
 * and CSRF rule as a form, answered in JSON (a script cannot follow a sign-in redirect), with the
 * session's CSRF token in `x-csrf-token` as the admin API's session path takes it. The body must
 * be `application/json` (a cross-site form cannot send that without CORS); nothing is changed.
 */
export function consoleJson(
  deps: SessionDeps,
  answer: (c: Context<AppEnv>, admin: ConsoleUser, body: unknown) => Promise<Response>,
): Handler {
  return async (c) => {
    const refuse = (status: number, error: string, message: string) =>
      c.json({ error, message }, status as 400, { 'Cache-Control': 'no-store' })
    const session = await readSession(deps, c.req.raw)
    if (!session) return refuse(401, 'unauthorized', 'sign in first')
    if (!session.user.permissions.includes(ADMIN_PERMISSION))
      return refuse(403, 'forbidden', `the ${ADMIN_PERMISSION} permission is needed`)
    const sent = c.req.header('x-csrf-token')
    if (!sent || !safeEqual(sent, session.csrfToken))
      return refuse(403, 'forbidden', 'the x-csrf-token header is missing or wrong')
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/json')
      return refuse(415, 'unsupported_media_type', 'the body must be application/json')
    let body: unknown
    try {
      // The bounds every JSON input from outside gets: depth, NUL characters, then the syntax.
      body = parseJsonInput(await c.req.text())
    } catch (err) {
      return refuse(
        400,
        'invalid_request',
        err instanceof JsonInputError ? err.message : 'the body is not JSON',
      )
    }
    const { user } = session
    const admin: ConsoleUser = {
      session,
      actor: { type: 'user', id: user.id, label: user.email },
      requestId: c.get('requestId') ?? null,
    }
    return answer(c, admin, body)
  }
}

function capitalise(text: string): string {
  const sentence = `${text.charAt(0).toUpperCase()}${text.slice(1)}`
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`
}

/** Redirect after a change (303, so a reload does not send the form again). */
export function done(c: Context<AppEnv>, to: string): Response {
  c.header('Cache-Control', 'no-store')
  return c.redirect(to, 303)
}
