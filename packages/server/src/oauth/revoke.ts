import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import type { AuditLog } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import type { Database } from '../store/schema.js'
import { looksLikeJwt, type TokenSigningDeps, verifyAccessToken } from './access-token.js'
import { authenticateClient, type ClientAuthDeps } from './client-auth.js'
import type { Client } from './clients.js'
import { OAuthError } from './errors.js'
import type { Grants } from './grants.js'
import type { RefreshTokens } from './refresh-tokens.js'
import { noStoreJson, readOAuthForm } from './token.js'

/** What revocation uses: client authentication, token checks, the revocation list, grants, audit. */
export interface RevocationDeps extends TokenSigningDeps, ClientAuthDeps {
  config: TokenSigningDeps['config'] & ClientAuthDeps['config']
  db: Kysely<Database>
  refreshTokens: Pick<RefreshTokens, 'find'>
  grants: Pick<Grants, 'revoke'>
  audit: AuditLog
}

/**
 * Revokes one token for the client it was issued to, and reports whether anything was revoked.
 * A refresh token ends its whole grant (RFC 7009 §2.1: "SHOULD also invalidate all access tokens
 * based on the same authorization grant"); an access token's jti is listed until it expires.
 * Another client's token, an unknown or an expired one changes nothing. Storage errors propagate:
 * the caller must not be told a token is revoked when it is not.
 */
export async function revokeToken(
  deps: RevocationDeps,
  client: Client,
  token: string,
  requestId: string | undefined,
): Promise<boolean> {
  const actor = { type: 'client' as const, id: client.clientId, label: client.name }
  if (looksLikeJwt(token)) {
    const claims = await verifyAccessToken(deps, token)
    if (!claims || claims.client_id !== client.clientId) return false
    await deps.db
      .insertInto('revoked_access_tokens')
      .values({ jti: claims.jti, expires_at: claims.exp * 1000 })
      .onConflict((oc) => oc.column('jti').doNothing())
      .execute()
    await deps.audit.append({
      type: 'token.revoked',
      actor,
      target: { type: 'access_token', id: claims.jti },
      requestId: requestId ?? null,
      data: {
        tokenType: 'access_token',
        clientId: client.clientId,
        grantId: claims.grant_id ?? null,
      },
    })
    return true
  }
  const refresh = await deps.refreshTokens.find(token)
  if (!refresh || refresh.clientId !== client.clientId) return false
  await deps.grants.revoke(refresh.grantId, 'refresh-token-revoked', actor)
  await deps.audit.append({
    type: 'token.revoked',
    actor,
    onBehalfOf: { type: 'user', id: refresh.userId },
    target: { type: 'grant', id: refresh.grantId },
    requestId: requestId ?? null,
    data: { tokenType: 'refresh_token', clientId: client.clientId, grantId: refresh.grantId },
  })
  return true
}

/**
 * RFC 7009 token revocation. The client authenticates as at the token endpoint (public clients
 * send their client_id); the answer is 200 whether or not the token was valid (§2.2), so a client
 * cannot probe other clients' tokens, but a storage failure is an error, never a 200.
 */
export function createRevocationRoutes(deps: RevocationDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const endpointUrl = `${deps.config.issuer}/revoke`

  app.post('/revoke', async (c) => {
    const form = await readOAuthForm(c)
    const { client } = await authenticateClient(deps, c.req.header('authorization'), form, {
      endpointUrl,
      requester: c.get('clientAddress') ?? 'unknown',
    })
    const token = form.get('token')
    if (!token)
      throw new OAuthError('invalid_request', 'token is required', { reason: 'missing-token' })
    // token_type_hint is only a hint (§2.1): the token's shape says what it is.
    await revokeToken(deps, client, token, c.get('requestId'))
    return noStoreJson({})
  })

  return app
}
