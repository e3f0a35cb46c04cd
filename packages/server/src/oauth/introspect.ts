import { Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { Users } from '../identity/users.js'
import {
  inactiveReason,
  looksLikeJwt,
  type TokenSigningDeps,
  type TokenStatusDeps,
  verifyAccessToken,
} from './access-token.js'
import { authenticateClient, type ClientAuthDeps } from './client-auth.js'
import type { Client } from './clients.js'
import { OAuthError } from './errors.js'
import type { RefreshTokens } from './refresh-tokens.js'
import { formatScope } from './scopes.js'
import { noStoreJson, readOAuthForm } from './token.js'

/** The scope that lets a client (a resource server) introspect any token Deputy issued. */
export const INTROSPECT_SCOPE = 'deputy:introspect'

const INACTIVE = { active: false } as const

/** What introspection reads: client authentication, token checks, refresh tokens, people. */
export interface IntrospectionDeps extends TokenSigningDeps, TokenStatusDeps, ClientAuthDeps {
  config: TokenSigningDeps['config'] & ClientAuthDeps['config']
  clients: TokenStatusDeps['clients'] & ClientAuthDeps['clients']
  refreshTokens: Pick<RefreshTokens, 'find'>
  users: Pick<Users, 'findById'>
}

/**
 * Who may introspect what: a client allowed the `deputy:introspect` scope may introspect any
 * token; any other confidential client only the tokens issued to itself. For anything else the
 * answer is `active: false`, which tells the caller nothing (RFC 7662 §2.2, §4).
 */
function mayIntrospect(caller: Client, tokenClientId: string): boolean {
  return caller.allowedScopes.includes(INTROSPECT_SCOPE) || caller.clientId === tokenClientId
}

/** RFC 7662 §2.2: what an access or refresh token is, or `active: false`. */
export async function introspectToken(
  deps: IntrospectionDeps,
  caller: Client,
  token: string,
): Promise<Record<string, unknown>> {
  if (looksLikeJwt(token)) {
    const claims = await verifyAccessToken(deps, token)
    if (!claims || !mayIntrospect(caller, claims.client_id)) return INACTIVE
    if ((await inactiveReason(deps, claims)) !== null) return INACTIVE
    // Every claim the JWT carries — the person's name, email, roles, permissions and custom
    // claims included — so a resource server that introspects sees what one verifying the JWT
    // sees (RFC 7662 §2.2 allows further members).
    // RFC 9449 §6.2: a bound token shows its `cnf` (among the claims) and the DPoP token type.
    const tokenType = claims.cnf?.jkt ? 'DPoP' : 'Bearer'
    return { ...claims, active: true, scope: claims.scope ?? '', token_type: tokenType }
  }
  const refresh = await deps.refreshTokens.find(token)
  const now = deps.clock.now().getTime()
  if (!refresh || refresh.rotated || refresh.expiresAt <= now) return INACTIVE
  if (!mayIntrospect(caller, refresh.clientId)) return INACTIVE
  const [grantActive, client, user] = await Promise.all([
    deps.grants.isActive(refresh.grantId),
    deps.clients.resolve(refresh.clientId),
    deps.users.findById(refresh.userId),
  ])
  if (!grantActive || !client || !user || user.status !== 'active') return INACTIVE
  return {
    active: true,
    scope: formatScope(refresh.scopes),
    client_id: refresh.clientId,
    sub: refresh.userId,
    aud: refresh.resource,
    iss: deps.config.issuer,
    exp: Math.floor(refresh.expiresAt / 1000),
    iat: Math.floor(refresh.createdAt / 1000),
    token_type: 'refresh_token',
    // RFC 9449 §5: the key a public client's family is bound to.
    ...(refresh.dpopJkt !== null && { cnf: { jkt: refresh.dpopJkt } }),
  }
}

/**
 * RFC 7662 token introspection, for authenticated confidential clients (resource servers); a
 * public client cannot authenticate and is refused (§2.1: the endpoint MUST require authorization).
 */
export function createIntrospectionRoutes(deps: IntrospectionDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const endpointUrl = `${deps.config.issuer}/introspect`

  app.post('/introspect', async (c) => {
    const form = await readOAuthForm(c)
    const { client } = await authenticateClient(deps, c.req.header('authorization'), form, {
      endpointUrl,
      requester: c.get('clientAddress') ?? 'unknown',
    })
    if (client.tokenEndpointAuthMethod === 'none') {
      throw new OAuthError('invalid_client', 'introspection needs a confidential client', {
        reason: 'public-client',
      })
    }
    const token = form.get('token')
    if (!token)
      throw new OAuthError('invalid_request', 'token is required', { reason: 'missing-token' })
    return noStoreJson(await introspectToken(deps, client, token))
  })

  return app
}
