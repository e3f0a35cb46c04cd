import { mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { isSubset, parseScope } from '../scopes.js'
import type { GrantContext, GrantResult } from './grant.js'

function invalidGrant(reason: string): OAuthError {
  return new OAuthError('invalid_grant', 'the refresh token is invalid', { reason })
}

/**
 * The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3): the token is rotated on every use;
 * reuse of a rotated token after the grace revokes the whole grant (RFC 9700 §4.14.2). The new
 * access token may narrow the scope, never widen it, and is for the grant's resource only.
 */
export async function refreshTokenGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  const presented = form.get('refresh_token')
  if (!presented) {
    throw new OAuthError('invalid_request', 'refresh_token is required', {
      reason: 'missing-refresh-token',
    })
  }
  const requestedScopes = parseScope(form.get('scope'))
  if (requestedScopes === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const resources = form.all('resource')
  if (resources.length > 1) {
    throw new OAuthError('invalid_target', 'only one resource per request is supported', {
      reason: 'multiple-resources',
    })
  }

  const [requestedResource] = resources
  // The grace for a lost response needs a client that proved who it is (refresh-tokens.ts).
  const grace = { grace: client.tokenEndpointAuthMethod !== 'none' }
  const rotated = await deps.refreshTokens.rotate(
    presented,
    client.clientId,
    (data) => {
      // RFC 6749 §6: the requested scope MUST NOT include any scope not originally granted.
      if (!isSubset(requestedScopes, data.scopes)) {
        throw new OAuthError('invalid_scope', 'the requested scope exceeds the grant', {
          reason: 'scope-widening',
        })
      }
      // RFC 9449 §5: a bound family is refreshed only with a proof made with its key. Refused
      // before anything changes, so a stolen token without the key cannot end the family.
      if (data.dpopJkt !== null && data.dpopJkt !== ctx.dpopJkt) {
        throw invalidGrant(ctx.dpopJkt === undefined ? 'dpop-proof-missing' : 'dpop-key-mismatch')
      }
      // RFC 8707 §2.2 / RFC 9700 §4.14.2: a refresh token is bound to the resource it was granted for.
      if (requestedResource !== undefined && requestedResource !== data.resource) {
        throw new OAuthError('invalid_target', 'the resource does not match the grant', {
          reason: 'resource-mismatch',
        })
      }
    },
    grace,
  )
  if (rotated.status === 'unknown') throw invalidGrant('unknown-refresh-token')
  if (rotated.status === 'expired') throw invalidGrant('expired-refresh-token')
  if (rotated.status === 'family-expired') throw invalidGrant('refresh-token-family-expired')
  if (rotated.status === 'revoked') throw invalidGrant('grant-revoked')
  if (rotated.status === 'wrong-client') throw invalidGrant('refresh-token-of-another-client')
  if (rotated.status === 'reused') {
    await deps.grants.revoke(rotated.grantId, 'refresh-token-reuse', {
      type: 'client',
      id: client.clientId,
    })
    throw invalidGrant('refresh-token-reused')
  }
  const { data } = rotated
  const [user, resource, details] = await Promise.all([
    deps.users.findById(data.userId),
    deps.resources.get(data.resource),
    deps.grants.detailsOf(data.grantId),
  ])
  if (user?.status !== 'active') throw invalidGrant('user-unavailable')
  if (!resource) {
    throw new OAuthError('invalid_target', 'the resource no longer exists', {
      reason: 'resource-removed',
    })
  }
  const scopes = requestedScopes.length > 0 ? requestedScopes : data.scopes
  const access = await mintAccessToken(deps, {
    dpopJkt: ctx.dpopJkt,
    client,
    user,
    resource,
    scopes,
    grantId: data.grantId,
    authorizationDetails: details,
  })
  return {
    body: {
      access_token: access.token,
      token_type: access.tokenType,
      expires_in: access.expiresIn,
      scope: access.scope,
      refresh_token: rotated.token,
      ...(details.length > 0 && { authorization_details: details }),
    },
    issued: {
      user,
      resource: resource.uri,
      scopes,
      jti: access.jti,
      grantId: data.grantId,
      refreshToken: true,
      retried: rotated.retried,
    },
  }
}
