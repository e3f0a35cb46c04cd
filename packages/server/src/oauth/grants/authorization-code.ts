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

  const consumed = await deps.authorizationCodes.consume(code)
  if (consumed.status === 'unknown') throw invalidGrant('unknown-code')
  if (consumed.status === 'expired') throw invalidGrant('expired-code')
  if (consumed.status === 'replayed') {
    // A replay racing the redemption that won only loses: revoking now could end the grant before
    // the winner issued, and then nobody would get tokens. After the winner issued, it revokes.
    if (!consumed.redeemed) throw invalidGrant('code-redemption-in-progress')
    await deps.grants.revoke(consumed.code.grantId, 'code-replay', {
      type: 'client',
      id: client.clientId,
    })
    throw invalidGrant('code-replayed')
  }
  const granted = consumed.code
  // RFC 6749 §4.1.3: the code was issued to this client, for this redirect URI.
  if (granted.clientId !== client.clientId) throw invalidGrant('code-of-another-client')
  if (granted.redirectUri !== redirectUri) throw invalidGrant('redirect-uri-mismatch')
  // RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
  if (!safeEqual(sha256(verifier), granted.codeChallenge)) throw invalidGrant('pkce-mismatch')
  // RFC 8707 §2.2: a resource on the token request must be the one the code was issued for.
  const [requestedResource] = resources
  if (requestedResource !== undefined && requestedResource !== granted.resource) {
    throw new OAuthError('invalid_target', 'the resource does not match the authorization', {
      reason: 'resource-mismatch',
    })
  }

  const [grantActive, user, resource, details] = await Promise.all([
    deps.grants.isActive(granted.grantId),
    deps.users.findById(granted.userId),
    deps.resources.get(granted.resource),
    deps.grants.detailsOf(granted.grantId),
  ])
  if (!grantActive) throw invalidGrant('grant-revoked')
  if (user?.status !== 'active') throw invalidGrant('user-unavailable')
  if (!resource) {
    throw new OAuthError('invalid_target', 'the resource no longer exists', {
      reason: 'resource-removed',
    })
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
  // The refresh token and the mark that the code's redemption is complete commit together.
  await deps.db.transaction().execute(async (trx) => {
    if (client.grantTypes.includes('refresh_token')) {
      body.refresh_token = await deps.refreshTokens.issue(
        {
          grantId: granted.grantId,
          clientId: client.clientId,
          userId: user.id,
          resource: resource.uri,
          scopes: granted.scopes,
          // RFC 9449 §5: a public client's refresh token is bound to its DPoP key; a confidential
          // client's is bound to its own authentication already.
          dpopJkt: client.tokenEndpointAuthMethod === 'none' ? (ctx.dpopJkt ?? null) : null,
        },
        trx,
      )
    }
    await deps.authorizationCodes.markRedeemed(code, trx)
  })
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
    },
  }
}
