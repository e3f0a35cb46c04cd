import { mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { parseScope } from '../scopes.js'
import type { GrantContext, GrantResult } from '../token.js'

/**
 * The client credentials grant (RFC 6749 §4.4): an agent acting as itself, so `sub` is its
 * client_id and no refresh token is issued (§4.4.3). The token is for one resource (RFC 8707);
 * the scope is what the client asked for, and every scope asked for must be both allowed for the
 * client and offered by the resource: anything else is refused, never silently dropped.
 */
export async function clientCredentialsGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  // RFC 6749 §4.4.2: only confidential clients.
  if (client.tokenEndpointAuthMethod === 'none') {
    throw new OAuthError('unauthorized_client', 'client_credentials needs a confidential client', {
      reason: 'public-client',
    })
  }
  const requested = parseScope(form.get('scope'))
  if (requested === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const resource = await deps.resources.resolve(form.all('resource'))
  const allowed = new Set(client.allowedScopes.filter((s) => Object.hasOwn(resource.scopes, s)))
  // RFC 6749 §3.3: with no scope requested, the default is everything the client may have here.
  const scopes = requested.length > 0 ? requested : [...allowed]
  const refused = scopes.filter((s) => !allowed.has(s))
  if (refused.length > 0) {
    throw new OAuthError('invalid_scope', 'a requested scope is not allowed for this client', {
      reason: `scope-not-allowed ${refused.join(' ')}`,
    })
  }
  const access = await mintAccessToken(deps, {
    client,
    user: null,
    resource,
    scopes,
    grantId: null,
  })
  return {
    body: {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      scope: access.scope,
    },
    issued: {
      user: null,
      resource: resource.uri,
      scopes,
      jti: access.jti,
      grantId: null,
      refreshToken: false,
    },
  }
}
