import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import { DeputyError } from '../lib/errors.js'
import { randomToken } from '../lib/random.js'
import type { AppEnv } from './env.js'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Responses that `edgeResponse` built with every edge header (request id, security headers)
 * already in their plain header object. The middleware leaves these alone: reading `res.headers`
 * would turn @hono/node-server's plain header object into a `Headers` and back, a measurable
 * share of a token request. Any other response (c.json, a raw `new Response`, an error page)
 * gets its headers set after the handler, as before.
 */
const complete = new WeakSet<Response>()

/** Gives every request an id (a well-formed incoming `X-Request-Id` is kept) and logs its outcome. */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async function requestContext(c, next) {
    const incoming = c.req.header('x-request-id')
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomToken(12)
    c.set('requestId', requestId)
    // The process logger, not a child bound to the request id: a pino child costs an object with
    // its own formatters per request, and every caller passes `requestId` in its log line anyway.
    c.set('logger', logger)
    const started = logger.isLevelEnabled('info') ? performance.now() : undefined
    await next()
    const res = c.res
    // Set on the response's own headers, not with `c.header`: after the handler, `c.header`
    // copies the finished response (body stream included) into a new one.
    if (!complete.has(res)) res.headers.set('X-Request-Id', requestId)
    if (started !== undefined) {
      // The path only: query strings can carry codes and state.
      logger.info(
        {
          requestId,
          method: c.req.method,
          path: c.req.path,
          status: res.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'request',
      )
    }
  }
}

/**
 * Refuses a request whose path holds a NUL (`%00`): route parameters are decoded from the path
 * and reach queries, and PostgreSQL text cannot hold a NUL, so `/admin/api/users/%00` would be a
 * database error (500) instead of the caller's mistake. Hono has already decoded the path.
 */
export function refuseNulInPath(): MiddlewareHandler<AppEnv> {
  return async function refuseNulInPath(c, next) {
    if (c.req.path.includes('\u0000')) {
      throw new DeputyError('ERR_INVALID_INPUT', 'the request path contains a NUL character (%00)')
    }
    await next()
  }
}

/** The policy every response gets unless its handler set one (the consent page widens form-action). */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** The security headers no handler may change (only the CSP may be set by a handler). */
function fixedSecurityHeaders(https: boolean): Record<string, string> {
  return {
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
    ...(https && { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' }),
  }
}

/**
 * Security headers for every response. Pages are server-rendered with no inline script, so the
 * policy can be strict; `frame-ancestors 'none'` stops clickjacking of login and consent.
 */
export function securityHeaders(options: { https: boolean }): MiddlewareHandler<AppEnv> {
  const fixed = Object.freeze(fixedSecurityHeaders(options.https))
  const entries = Object.entries(fixed)
  return async function securityHeaders(c, next) {
    c.set('securityHeaders', fixed)
    await next()
    const res = c.res
    if (complete.has(res)) return
    const h = res.headers
    if (!h.has('Content-Security-Policy')) h.set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    for (const [name, value] of entries) h.set(name, value)
  }
}

/** Names `edgeResponse` writes itself; a handler may give only the CSP among them. */
const EDGE_HEADER_NAMES = new Set([
  'x-request-id',
  'x-frame-options',
  'x-content-type-options',
  'referrer-policy',
  'cross-origin-opener-policy',
  'permissions-policy',
  'strict-transport-security',
])

/** Per handler header object (hot paths pass constants): may it be merged as plain keys? */
const mergeable = new WeakMap<object, boolean>()

/**
 * True when `headers` can be merged into the edge headers as object keys: no name that differs
 * only in case from one the edge writes (both would be sent), and the CSP, if given, spelt as the
 * default is. Anything else takes the middleware's case-insensitive path.
 */
function canMerge(headers: Readonly<Record<string, string>>): boolean {
  let ok = mergeable.get(headers)
  if (ok === undefined) {
    ok = Object.keys(headers).every((name) => {
      const lower = name.toLowerCase()
      if (lower === 'content-security-policy') return name === 'Content-Security-Policy'
      return !EDGE_HEADER_NAMES.has(lower)
    })
    mergeable.set(headers, ok)
  }
  return ok
}

/**
 * A response with the edge headers written in from the start: `headers` (a handler's own CSP
 * included), then the fixed security headers and the request id, exactly what the middleware
 * would set afterwards. Used on hot paths (the token endpoint). Outside the edge middleware (a
 * sub-app on its own), or when `headers` names an edge header, it is a plain response and the
 * middleware sets the edge headers as for any other.
 */
export function edgeResponse(
  c: Context<AppEnv>,
  body: string | null,
  status: number,
  headers: Readonly<Record<string, string>>,
): Response {
  const fixed = c.get('securityHeaders')
  const requestId = c.get('requestId')
  if (fixed === undefined || requestId === undefined || !canMerge(headers)) {
    return new Response(body, { status, headers })
  }
  const res = new Response(body, {
    status,
    headers: {
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      ...headers,
      ...fixed,
      'X-Request-Id': requestId,
    },
  })
  complete.add(res)
  return res
}
