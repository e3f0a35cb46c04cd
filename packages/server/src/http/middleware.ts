import type { MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import { randomToken } from '../lib/random.js'
import type { AppEnv } from './env.js'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Gives every request an id (a well-formed incoming `X-Request-Id` is kept) and logs its outcome. */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async function requestContext(c, next) {
    const incoming = c.req.header('x-request-id')
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomToken(12)
    const child = logger.child({ requestId })
    c.set('requestId', requestId)
    c.set('logger', child)
    const started = performance.now()
    await next()
    c.header('X-Request-Id', requestId)
    // The path only: query strings can carry codes and state.
    child.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    )
  }
}

/** The policy every response gets unless its handler set one (the consent page widens form-action). */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/**
 * Security headers for every response. Pages are server-rendered with no inline script, so the
 * policy can be strict; `frame-ancestors 'none'` stops clickjacking of login and consent.
 */
export function securityHeaders(options: { https: boolean }): MiddlewareHandler<AppEnv> {
  return async function securityHeaders(c, next) {
    await next()
    const h = c.res.headers
    if (!h.has('Content-Security-Policy')) h.set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    h.set('X-Frame-Options', 'DENY')
    h.set('X-Content-Type-Options', 'nosniff')
    h.set('Referrer-Policy', 'no-referrer')
    h.set('Cross-Origin-Opener-Policy', 'same-origin')
    h.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=()')
    if (options.https) h.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains')
  }
}
