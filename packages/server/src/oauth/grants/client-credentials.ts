import { mintAccessToken } from '../access-token.js'
import type { Client } from '../clients.js'
import { isOAuthError, OAuthError } from '../errors.js'
import { metadataHostOf } from '../metadata-hosts.js'
import type { Resource } from '../resources.js'
import { parseScope } from '../scopes.js'
import type { GrantContext, GrantResult } from './grant.js'

/** The resource a machine token is for and the scopes an operator granted the client there. */
interface OperatorGrant {
  resource: Resource
  scopes: Set<string>
}

/**
 * What an operator allowed this client to get without a person, for the requested resource (or
 * the default one). A pre-registered client carries its allowed scopes and resources; a Client ID
 * Metadata Document client has only what the operator's allow-list grants its host; a client that
 * registered itself has nothing. No person consents to these tokens, so no operator, no token.
 */
async function operatorGrant(ctx: GrantContext, requested: string[]): Promise<OperatorGrant> {
  const { deps, client } = ctx
  if (client.kind === 'registered') {
    const resource = await deps.resources.resolve(requested)
    if (client.allowedResources !== null && !client.allowedResources.includes(resource.uri)) {
      throw new OAuthError('invalid_target', 'this client may not get tokens for this resource', {
        reason: `resource-not-allowed ${resource.uri}`,
      })
    }
    return { resource, scopes: offered(resource, client.allowedScopes) }
  }
  if (client.kind === 'metadata_document') return metadataHostGrant(ctx, client, requested)
  throw new OAuthError('unauthorized_client', 'this client may not use client_credentials', {
    reason: `no-operator-grant ${client.kind}`,
  })
}

async function metadataHostGrant(
  ctx: GrantContext,
  client: Client,
  requested: string[],
): Promise<OperatorGrant> {
  const { deps } = ctx
  const host = metadataHostOf(client.clientId)
  const grants = await deps.metadataHosts.forHost(host)
  if (grants.length === 0) {
    throw new OAuthError(
      'unauthorized_client',
      'client_credentials for a metadata-document client needs an operator to allow its host',
      { reason: `metadata-host-not-allowed ${host}` },
    )
  }
  let target = requested
  if (requested.length === 0) {
    // No `resource`: the default one when the host is allowed there, else its only resource.
    const fallback = await deps.resources.resolve([]).catch((err: unknown) => {
      if (isOAuthError(err)) return undefined
      throw err
    })
    const only = grants.length === 1 ? grants[0]?.resource : undefined
    const chosen = grants.some((g) => g.resource === fallback?.uri) ? fallback?.uri : only
    if (chosen === undefined)
      throw new OAuthError('invalid_target', 'the resource parameter is required', {
        reason: 'no-default-resource',
      })
    target = [chosen]
  }
  const resource = await deps.resources.resolve(target)
  const grant = grants.find((g) => g.resource === resource.uri)
  if (!grant) {
    throw new OAuthError('invalid_target', 'this client may not get tokens for this resource', {
      reason: `resource-not-allowed ${resource.uri}`,
    })
  }
  return { resource, scopes: offered(resource, grant.scopes) }
}

/** The granted scopes the resource still offers (a scope removed there is granted nowhere). */
function offered(resource: Resource, scopes: readonly string[]): Set<string> {
  return new Set(scopes.filter((s) => Object.hasOwn(resource.scopes, s)))
}

/**
 * The client credentials grant (RFC 6749 §4.4): an agent acting as itself, so `sub` is its
 * client_id and no refresh token is issued (§4.4.3). The token is for one resource (RFC 8707) the
 * operator allowed, and its scope is what the client asked for, every scope of which must be
 * granted by the operator and offered by the resource: anything else is refused, never silently
 * dropped, and a token with no scope at all is never issued.
 */
export async function clientCredentialsGrant(ctx: GrantContext): Promise<GrantResult> {
  // RFC 6749 §4.4.2: only confidential clients.
  if (ctx.client.tokenEndpointAuthMethod === 'none') {
    throw new OAuthError('unauthorized_client', 'client_credentials needs a confidential client', {
      reason: 'public-client',
    })
  }
  return machineTokens(ctx)
}

/**
 * A token for the client acting as itself, within what the operator granted it (the scope
 * rules above): client_credentials, and a workload's jwt-bearer assertion mapped to the client.
 */
export async function machineTokens(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  const requested = parseScope(form.get('scope'))
  if (requested === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const { resource, scopes: granted } = await operatorGrant(ctx, form.all('resource'))
  // RFC 6749 §3.3: with no scope requested, the default is everything the client may have here.
  const scopes = requested.length > 0 ? requested : [...granted]
  if (scopes.length === 0) {
    throw new OAuthError('invalid_scope', 'no scope is granted to this client for this resource', {
      reason: `no-scope-granted ${resource.uri}`,
    })
  }
  const refused = scopes.filter((s) => !granted.has(s))
  if (refused.length > 0) {
    throw new OAuthError('invalid_scope', 'a requested scope is not allowed for this client', {
      reason: `scope-not-allowed ${refused.join(' ')}`,
    })
  }
  const access = await mintAccessToken(deps, {
    dpopJkt: ctx.dpopJkt,
    client,
    user: null,
    resource,
    scopes,
    grantId: null,
  })
  return {
    body: {
      access_token: access.token,
      token_type: access.tokenType,
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
