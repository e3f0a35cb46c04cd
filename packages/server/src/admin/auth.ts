import type { MiddlewareHandler } from 'hono'
import type { Actor } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { ADMIN_PERMISSION } from '../identity/roles.js'
import type { CurrentSession } from '../identity/sessions.js'
import { DeputyError } from '../lib/errors.js'
import { jsonTextProblem } from '../lib/json-input.js'
import { safeEqual } from '../lib/random.js'
import type { AdminApiKeys } from './api-keys.js'

/** Handler variables inside the admin API: who is acting, for the audit chain. */
export interface AdminEnv {
  Variables: AppEnv['Variables'] & { actor: Actor }
}

/** Reads the signed-in browser session of a request (identity/sessions.ts in production). */
export type SessionReader = (request: Request) => Promise<CurrentSession | null>

/** Methods that change nothing, so a session needs no CSRF token for them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The admin API gate: an admin API key as a bearer token, or a signed-in session whose user holds
 * `deputy:admin`. A session is ambient (a cookie the browser sends by itself), so a state-changing
 * request must also prove it came from our pages with the session's CSRF token; a bearer key is
 * never sent by a browser on its own and needs no such proof.
 */
export function requireAdmin(
  keys: Pick<AdminApiKeys, 'verify'>,
  readSession: SessionReader,
): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const authorization = c.req.header('authorization')
    if (authorization !== undefined) {
      const match = /^Bearer +([^\s]+) *$/i.exec(authorization)
      if (!match?.[1])
        return unauthorized(c, 'the Authorization header must be "Bearer <admin API key>"')
      const key = await keys.verify(match[1])
      if (!key) return unauthorized(c, 'the admin API key is not valid or has been revoked')
      c.set('actor', { type: 'system', id: `admin-key:${key.id}`, label: key.name })
      await checkInput(c)
      return next()
    }

    const session = await readSession(c.req.raw)
    if (!session) return unauthorized(c, 'sign in, or send "Authorization: Bearer <admin API key>"')
    const { user } = session
    if (user.status !== 'active' || !user.permissions.includes(ADMIN_PERMISSION)) {
      throw new DeputyError(
        'ERR_FORBIDDEN',
        `${user.email} does not have the ${ADMIN_PERMISSION} permission`,
      )
    }
    if (!SAFE_METHODS.has(c.req.method)) {
      const presented = c.req.header('x-csrf-token')
      if (!presented || !safeEqual(presented, session.csrfToken)) {
        throw new DeputyError(
          'ERR_FORBIDDEN',
          'a change made with a signed-in session must send the X-CSRF-Token header',
        )
      }
    }
    c.set('actor', { type: 'user', id: user.id, label: user.email })
    await checkInput(c)
    return next()
  }
}

/**
 * The bounds every admin API request is held to before a handler sees it, whichever API (users,
 * clients, policies) it is for: no NUL in the query (PostgreSQL text cannot hold one), and a body
 * that is not nested deeper than `MAX_JSON_DEPTH` and holds no NUL (lib/json-input.ts). The body
 * is read once here; handlers read it again from Hono's cache.
 */
async function checkInput(c: Parameters<MiddlewareHandler<AdminEnv>>[0]): Promise<void> {
  const url = c.req.url
  const query = url.indexOf('?')
  if (query !== -1 && url.includes('%00', query)) {
    throw new DeputyError('ERR_INVALID_INPUT', 'the query string contains a NUL character (%00)')
  }
  if (SAFE_METHODS.has(c.req.method)) return
  const problem = jsonTextProblem(await c.req.text())
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', `the request body ${problem}`)
}

// RFC 6750 §3: a 401 names the scheme the caller should use.
function unauthorized(c: Parameters<MiddlewareHandler<AdminEnv>>[0], message: string): Response {
  return c.json({ error: 'ERR_UNAUTHENTICATED', message, request_id: c.get('requestId') }, 401, {
    'WWW-Authenticate': 'Bearer realm="deputy-admin"',
    'Cache-Control': 'no-store',
  })
}
