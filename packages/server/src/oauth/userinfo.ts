import { type Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { Users } from '../identity/users.js'
import {
  inactiveReason,
  type TokenSigningDeps,
  type TokenStatusDeps,
  verifyAccessToken,
} from './access-token.js'
import { profileClaims } from './id-token.js'
import { parseScope } from './scopes.js'

/** RFC 6750 §2.1: `Authorization: Bearer <b64token>`. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/**
 * RFC 6750 §3: the challenge of a refused request. With no token at all the challenge carries no
 * error code (§3.1); otherwise `invalid_token` (401) or `insufficient_scope` (403).
 */
export function bearerChallenge(
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
  description?: string,
): Response {
  let challenge = 'Bearer realm="deputy"'
  if (error) challenge += `, error="${error}"`
  if (description) challenge += `, error_description="${description}"`
  if (error === 'insufficient_scope') challenge += ', scope="openid"'
  const status = error === 'insufficient_scope' ? 403 : error === 'invalid_request' ? 400 : 401
  return new Response(error ? JSON.stringify({ error, error_description: description }) : null, {
    status,
    headers: {
      'WWW-Authenticate': challenge,
      'Cache-Control': 'no-store',
      ...(error ? { 'Content-Type': 'application/json' } : {}),
    },
  })
}

/**
 * OpenID Connect UserInfo (Core §5.3). The rule: any active Deputy access token issued to a person
 * with the `openid` scope is accepted, whatever its audience (the token's client was granted
 * `openid`, which is what entitles it to these claims). Claims follow the scopes: always `sub`,
 * `name` with `profile`, `email` with `email`. The token is read from the Authorization header
 * only, never from the query string (RFC 6750 §2.3, RFC 9700 §4.3).
 */
export function createUserinfoRoutes(
  deps: TokenSigningDeps & TokenStatusDeps & { users: Pick<Users, 'findById'> },
): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  async function userinfo(c: Context<AppEnv>): Promise<Response> {
    const authorization = c.req.header('authorization')
    if (!authorization) return bearerChallenge()
    const match = BEARER.exec(authorization)
    if (!match) return bearerChallenge('invalid_request', 'use the Bearer scheme')
    const claims = await verifyAccessToken(deps, match[1] as string)
    if (!claims || (await inactiveReason(deps, claims)) !== null) {
      return bearerChallenge('invalid_token', 'the access token is invalid, expired or revoked')
    }
    const scopes = parseScope(claims.scope) ?? []
    // A client_credentials token names no person (sub is the client), so it has no user info.
    if (!scopes.includes('openid') || claims.sub === claims.client_id) {
      return bearerChallenge('insufficient_scope', 'the access token lacks the openid scope')
    }
    const user = await deps.users.findById(claims.sub)
    if (!user)
      return bearerChallenge('invalid_token', 'the access token is invalid, expired or revoked')
    return new Response(JSON.stringify({ sub: user.id, ...profileClaims(user, scopes) }), {
      status: 200,
      headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
    })
  }

  app.get('/userinfo', userinfo)
  app.post('/userinfo', userinfo)
  return app
}
