import type { Context } from 'hono'
import { setCookie } from 'hono/cookie'
import type { AppEnv } from '../http/env.js'
import { SESSION_COOKIE } from './sessions.js'

/**
 * Hands a browser its new session (every way of signing in ends here): Secure, HttpOnly,
 * SameSite=Lax so a link from elsewhere still arrives signed in, for the session's lifetime.
 */
export function setSessionCookie(c: Context<AppEnv>, sessionId: string, ttlSeconds: number): void {
  setCookie(c, SESSION_COOKIE, sessionId, {
    secure: true,
    httpOnly: true,
    sameSite: 'Lax',
    path: '/',
    maxAge: ttlSeconds,
  })
}
