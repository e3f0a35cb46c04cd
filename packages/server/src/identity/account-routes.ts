import { type Context, Hono } from 'hono'
import { deleteCookie } from 'hono/cookie'
import type { Actor, AuditLog } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { isDeputyError } from '../lib/errors.js'
import { type Form, FormError, readForm } from '../lib/form.js'
import { safeEqual } from '../lib/random.js'
import { type AccountNotice, accountPage } from '../ui/account-page.js'
import { messagePage } from '../ui/message-page.js'
import { ADMIN_PERMISSION } from './roles.js'
import {
  type CurrentSession,
  endSessionsOf,
  listSessions,
  readSession,
  SESSION_COOKIE,
  type SessionDeps,
  sessionHandle,
} from './sessions.js'
import type { Users } from './users.js'

/** What the account page reads and changes: the person, their sessions, the audit chain. */
export interface AccountDeps extends SessionDeps {
  users: Pick<Users, 'findById' | 'setName'>
  audit: AuditLog
}

const ACCOUNT = '/account'

/** The notices a change redirects to: fixed words, never text from the request. */
const NOTICES: Record<string, string> = {
  renamed: 'Your name was changed.',
  'signed-out': 'That session was signed out.',
  'signed-out-others': 'Every other session was signed out.',
  'no-others': 'There was no other session to sign out.',
}

function actorOf(session: CurrentSession): Actor {
  return { type: 'user', id: session.user.id, label: session.user.email }
}

/**
 * The signed-in person's account page (issue 15 §2): their profile, with the name they may
 * change, and every session they hold, each of which they may sign out.
 */
export function createAccountRoutes(deps: AccountDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  const show = async (
    c: Context<AppEnv>,
    session: CurrentSession,
    notice: AccountNotice | undefined,
    status: number,
    name?: string,
  ): Promise<Response> => {
    const sessions = await listSessions(deps, session.user.id)
    return c.html(
      accountPage({
        user: session.user,
        csrfToken: session.csrfToken,
        sessions,
        currentHandle: sessionHandle(session.idHash),
        isAdmin: session.user.permissions.includes(ADMIN_PERMISSION),
        ...(notice && { notice }),
        ...(name !== undefined && { name }),
      }),
      status as 200,
      { 'Cache-Control': 'no-store' },
    )
  }

  /** A change's form and session, or the answer that ends it (no form, no session, bad CSRF). */
  const changeForm = async (
    c: Context<AppEnv>,
  ): Promise<{ form: Form; session: CurrentSession } | { response: Response }> => {
    let form: Form
    try {
      form = await readForm(c.req)
    } catch (err) {
      if (!(err instanceof FormError)) throw err
      return {
        response: c.html(
          messagePage({
            title: 'Form not accepted',
            text: 'The form was not sent as Deputy built it. Reload the page and try again.',
            link: { href: ACCOUNT, label: 'Back to your account' },
          }),
          err.problem === 'not-form' ? 415 : 400,
          { 'Cache-Control': 'no-store' },
        ),
      }
    }
    const session = await readSession(deps, c.req.raw)
    if (!session)
      return { response: c.redirect(`/login?return_to=${encodeURIComponent(ACCOUNT)}`, 303) }
    if (!safeEqual(form.get('csrf_token') ?? '', session.csrfToken))
      return {
        response: await show(
          c,
          session,
          { kind: 'error', text: 'This form has expired. Reload the page and try again.' },
          403,
        ),
      }
    return { form, session }
  }

  app.get(ACCOUNT, async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(`/login?return_to=${encodeURIComponent(ACCOUNT)}`, 303)
    const done = c.req.query('done')
    const text = done !== undefined && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined
    return show(c, session, text ? { kind: 'notice', text } : undefined, 200)
  })

  app.post('/account/profile', async (c) => {
    const read = await changeForm(c)
    if ('response' in read) return read.response
    const { form, session } = read
    // lib/form.ts has already refused a NUL (PostgreSQL text cannot hold one).
    const name = form.get('name') ?? ''
    try {
      // users.setName validates (1–200 characters) and records `user.renamed` with the person.
      await deps.users.setName(session.user.email, name, actorOf(session))
    } catch (err) {
      if (isDeputyError(err) && err.code === 'ERR_INVALID_INPUT')
        return show(c, session, { kind: 'error', text: `Not changed: ${err.message}.` }, 400, name)
      throw err
    }
    return c.redirect(`${ACCOUNT}?done=renamed`, 303)
  })

  app.post('/account/sessions/sign-out', async (c) => {
    const read = await changeForm(c)
    if ('response' in read) return read.response
    const { form, session } = read
    const handle = form.get('session') ?? ''
    // Only the person's own sessions are looked at: someone else's handle ends nothing.
    const ended = await endSessionsOf(deps, session.user.id, { handle })
    if (ended.length === 0)
      return show(
        c,
        session,
        { kind: 'error', text: 'You have no such session; nothing was signed out.' },
        404,
      )
    const requestId = c.get('requestId') ?? null
    for (const h of ended)
      await recordEnded(deps, session, h, 'signed out from the account page', requestId)
    c.header('Cache-Control', 'no-store')
    if (ended.includes(sessionHandle(session.idHash))) {
      deleteCookie(c, SESSION_COOKIE, { secure: true, path: '/' })
      return c.redirect('/login?signed_out', 303)
    }
    return c.redirect(`${ACCOUNT}?done=signed-out`, 303)
  })

  app.post('/account/sessions/sign-out-others', async (c) => {
    const read = await changeForm(c)
    if ('response' in read) return read.response
    const { session } = read
    const ended = await endSessionsOf(deps, session.user.id, { allBut: session.idHash })
    const requestId = c.get('requestId') ?? null
    for (const h of ended)
      await recordEnded(deps, session, h, 'signed out everywhere else', requestId)
    c.header('Cache-Control', 'no-store')
    return c.redirect(
      `${ACCOUNT}?done=${ended.length > 0 ? 'signed-out-others' : 'no-others'}`,
      303,
    )
  })

  return app
}

/** One `session.ended` per session, with who ended it (the person) and from which session. */
async function recordEnded(
  deps: AccountDeps,
  by: CurrentSession,
  handle: string,
  reason: string,
  requestId: string | null,
): Promise<void> {
  await deps.audit.append({
    type: 'session.ended',
    actor: actorOf(by),
    target: { type: 'user', id: by.user.id },
    reason,
    requestId,
    data: { session: handle, from: sessionHandle(by.idHash) },
  })
}
