import type { CompiledQuery } from 'kysely'
import { safeEqual, sha256 } from '../../lib/random.js'
import { mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { mintIdToken } from '../id-token.js'
import type { GrantContext, GrantResult, TokenResponse } from './grant.js'

/** RFC 7636 §4.1: code-verifier = 43*128unreserved. */
const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

function invalidGrant(reason: string): OAuthError {
  return new OAuthError('invalid_grant', 'the authorization code is invalid', { reason })
}

/**
 * The authorization code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3) with PKCE S256 (RFC 7636 §4.6).
 * A code is redeemed once: a second redemption fails and revokes the grant, which ends the refresh
 * token and access tokens the first redemption issued (RFC 6749 §4.1.2, RFC 9700 §4.5).
 */
export async function authorizationCodeGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  const code = form.get('code')
  if (!code) throw new OAuthError('invalid_request', 'code is required', { reason: 'missing-code' })
  const redirectUri = form.get('redirect_uri')
  if (!redirectUri) {
    throw new OAuthError('invalid_request', 'redirect_uri is required', {
      reason: 'missing-redirect-uri',
    })
  }
  // Checked before the code is spent, so a request that cannot succeed leaves it to its owner.
  const verifier = form.get('code_verifier')
  if (!verifier) throw invalidGrant('missing-code-verifier')
  if (!CODE_VERIFIER.test(verifier)) throw invalidGrant('malformed-code-verifier')
  const resources = form.all('resource')
  if (resources.length > 1) {
    throw new OAuthError('invalid_target', 'only one resource per request is supported', {
      reason: 'multiple-resources',
    })
  }

  const found = await deps.authorizationCodes.find(code)
  if (found.status === 'unknown') throw invalidGrant('unknown-code')
  if (found.status === 'replayed') return replayed(ctx, found.redeemed, found.code.grantId)
  if (found.status === 'expired') throw invalidGrant('expired-code')
  const granted = found.code

  // Every refusal from here on spends the code first, as one presented code is spent whatever
  // comes of it: it cannot be tried again with another verifier or from another client.
  const refuse = async (err: OAuthError): Promise<never> => {
    await deps.authorizationCodes.spend(code)
    throw err
  }
  // RFC 6749 §4.1.3: the code was issued to this client, for this redirect URI.
  if (granted.clientId !== client.clientId) return refuse(invalidGrant('code-of-another-client'))
  if (granted.redirectUri !== redirectUri) return refuse(invalidGrant('redirect-uri-mismatch'))
  // RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
  if (!safeEqual(sha256(verifier), granted.codeChallenge))
    return refuse(invalidGrant('pkce-mismatch'))
  // RFC 8707 §2.2: a resource on the token request must be the one the code was issued for.
  const [requestedResource] = resources
  if (requestedResource !== undefined && requestedResource !== granted.resource) {
    return refuse(
      new OAuthError('invalid_target', 'the resource does not match the authorization', {
        reason: 'resource-mismatch',
      }),
    )
  }

  const [grantActive, user, resource, details] = await Promise.all([
    deps.grants.isActive(granted.grantId),
    deps.users.findById(granted.userId),
    deps.resources.get(granted.resource),
    deps.grants.detailsOf(granted.grantId),
  ])
  if (!grantActive) return refuse(invalidGrant('grant-revoked'))
  if (user?.status !== 'active') return refuse(invalidGrant('user-unavailable'))
  if (!resource) {
    return refuse(
      new OAuthError('invalid_target', 'the resource no longer exists', {
        reason: 'resource-removed',
      }),
    )
  }

  const access = await mintAccessToken(deps, {
    dpopJkt: ctx.dpopJkt,
    client,
    user,
    resource,
    scopes: granted.scopes,
    grantId: granted.grantId,
    authorizationDetails: details,
  })
  const body: TokenResponse = {
    access_token: access.token,
    token_type: access.tokenType,
    expires_in: access.expiresIn,
    scope: access.scope,
    // RFC 9396 §7: the token response says what was authorized.
    ...(details.length > 0 && { authorization_details: details }),
  }
  // One commit with the audit record (token.ts): the code redeemed (the condition: of racing
  // redemptions only one changes its row), the refresh token, and the grant's last use.
  const writes: CompiledQuery[] = []
  if (client.grantTypes.includes('refresh_token')) {
    const refresh = await deps.refreshTokens.prepare({
      grantId: granted.grantId,
      clientId: client.clientId,
      userId: user.id,
      resource: resource.uri,
      scopes: granted.scopes,
      // RFC 9449 §5: a public client's refresh token is bound to its DPoP key; a confidential
      // client's is bound to its own authentication already.
      dpopJkt: client.tokenEndpointAuthMethod === 'none' ? (ctx.dpopJkt ?? null) : null,
    })
    body.refresh_token = refresh.token
    writes.push(refresh.write)
  }
  const use = deps.grants.useStatement(granted.grantId)
  if (use) writes.push(use)
  if (granted.scopes.includes('openid')) {
    body.id_token = await mintIdToken(deps, {
      clientId: client.clientId,
      user,
      scopes: granted.scopes,
      nonce: granted.nonce,
      authTime: granted.authTime,
      accessToken: access.token,
    })
  }
  return {
    body,
    issued: {
      user,
      resource: resource.uri,
      scopes: granted.scopes,
      jti: access.jti,
      grantId: granted.grantId,
      refreshToken: body.refresh_token !== undefined,
      commit: {
        writes: { condition: deps.authorizationCodes.redemption(code), writes },
        // Another redemption of this code won meanwhile: this one is a replay, read afresh.
        lost: async () => {
          const now = await deps.authorizationCodes.find(code)
          if (now.status === 'replayed') return replayed(ctx, now.redeemed, now.code.grantId)
          // Unspent, yet the condition changed nothing: it expired in between.
          throw invalidGrant(now.status === 'unknown' ? 'unknown-code' : 'expired-code')
        },
      },
    },
  }
}

/**
 * A code presented after it was consumed. After the redemption that won has issued, this is a
 * replay: the grant is revoked, which ends what it issued (RFC 6749 §4.1.2, RFC 9700 §4.5). A
 * code spent by a refused redemption was never redeemed: a replay of it only loses, as revoking
 * could end a grant whose rightful redemption never happened.
 */
async function replayed(ctx: GrantContext, redeemed: boolean, grantId: string): Promise<never> {
  if (!redeemed) throw invalidGrant('code-redemption-in-progress')
  await ctx.deps.grants.revoke(grantId, 'code-replay', { type: 'client', id: ctx.client.clientId })
  throw invalidGrant('code-replayed')
}
