import type { Provider } from '../../providers/types.js'
import { type Vault, VaultError } from '../../vault/types.js'
import { type AccessTokenClaims, inactiveReason, verifyAccessToken } from '../access-token.js'
import type { Client } from '../clients.js'
import { OAuthError } from '../errors.js'
import { formatScope, parseScope } from '../scopes.js'
import type { GrantContext, GrantResult } from './grant.js'
import { ID_JAG_TOKEN_TYPE, idJagExchange } from './id-jag-exchange.js'

// RFC 8693 token exchange at /token, one profile per `requested_token_type` (a registry, as the
// grant types are): the vault's (issue 12 §5), where the caller — an MCP server or agent holding
// the person's Deputy access token — gets a short-lived upstream access token of the person's
// connected account. Issue 13's delegation profile (a Deputy access token with an `act` chain)
// registers beside it.

/** RFC 8693 §3: a Deputy access token as the subject token. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/**
 * Deputy's token type: the access token of a person's connected account at an upstream provider,
 * from the vault (docs/vault.md "The exchange"). Only ever an access token, never its refresh token.
 */
export const CONNECTION_ACCESS_TOKEN_TYPE =
  'urn:deputy:params:oauth:token-type:connection-access-token'

/** A token exchange profile: what one `requested_token_type` is answered with. */
type ExchangeProfile = (
  ctx: GrantContext,
  subject: AccessTokenClaims,
  requestedTokenType: string,
) => Promise<GrantResult>

/** RFC 8693 §2.2.2: an invalid or unacceptable request or subject token is `invalid_request`. */
function invalid(description: string, reason: string): OAuthError {
  return new OAuthError('invalid_request', description, { reason })
}

/** `aud` as a list (RFC 7519 §4.1.3 allows a string or an array). */
function audiences(claims: AccessTokenClaims): string[] {
  return typeof claims.aud === 'string' ? [claims.aud] : [...claims.aud]
}

/**
 * Whether the caller holds the person's token legitimately: it was issued to the caller itself
 * (the agent exchanging its own token), or it is for a resource the operator registered the
 * caller for (`allowedResources`: the MCP server that received the token from the agent). A
 * client with no resources listed serves none: a stolen token is no use to just any client.
 */
function holdsSubjectToken(client: Client, subject: AccessTokenClaims): boolean {
  if (subject.client_id === client.clientId) return true
  const served = client.allowedResources ?? []
  return audiences(subject).some((aud) => served.includes(aud))
}

/**
 * The vault profile: `connection=<provider>`, an optional narrower `scope`, and the person's
 * connected account's current access token back (refreshed ahead of expiry by the vault). Only a
 * client the operator allowed for that provider; no usable connection (none, needs reconnecting,
 * fewer scopes than asked) is Deputy's `connection_required` with the link the person follows.
 */
const connectionAccessToken: ExchangeProfile = async (ctx, subject, requestedTokenType) => {
  const { deps, client, form } = ctx
  const { providers, vault } = deps
  const name = form.get('connection')
  if (!name) throw invalid('connection is required', 'missing-connection')
  const scopes = parseScope(form.get('scope'))
  if (scopes === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const provider: Provider | null = name.length > 100 ? null : await providers.get(name)
  if (provider === null || provider.status !== 'active' || !provider.uses.includes('connect')) {
    throw new OAuthError('invalid_target', 'no such connection is offered', {
      reason: `unknown-connection ${name.slice(0, 100)}`,
    })
  }
  if (!provider.allowedClients.includes(client.clientId)) {
    throw new OAuthError(
      'unauthorized_client',
      'this client may not exchange for this connection',
      { reason: `client-not-allowed-for-provider ${provider.name}` },
    )
  }
  const userId = subject.sub
  let token: Awaited<ReturnType<Vault['accessToken']>>
  try {
    token = await vault.accessToken(userId, provider.name, scopes.length > 0 ? { scopes } : {})
  } catch (err) {
    if (!(err instanceof VaultError)) throw err
    if (err.code === 'provider_unavailable') {
      throw new OAuthError('temporarily_unavailable', 'the provider cannot be reached now', {
        reason: `provider-unavailable ${provider.name}`,
      })
    }
    throw connectionRequired(
      deps.config.issuer,
      provider,
      err.scopes.length > 0 ? err.scopes : scopes,
    )
  }
  const now = deps.clock.now().getTime()
  const expiresIn =
    token.expiresAt === null ? undefined : Math.max(0, Math.floor((token.expiresAt - now) / 1000))
  return {
    body: {
      access_token: token.accessToken,
      issued_token_type: requestedTokenType,
      // RFC 8693 §2.2.1: `N_A` is for tokens that are not access tokens; this one is a bearer token.
      token_type: 'Bearer',
      ...(expiresIn !== undefined && { expires_in: expiresIn }),
      ...(token.scopes.length > 0 && { scope: formatScope(token.scopes) }),
    },
    exchanged: {
      userId,
      agentClientId: subject.client_id,
      subjectTokenJti: subject.jti,
      subjectAudience: audiences(subject),
      provider: provider.name,
      requestedTokenType,
      scopes: token.scopes,
      expiresAt: token.expiresAt,
    },
  }
}

/**
 * Deputy's `connection_required`: the person has no usable connection to the provider (none,
 * one that needs reconnecting, or fewer scopes than asked). `connect_uri` is where they connect
 * it, with the scopes the caller needs; the caller hands the link to the person, never a token.
 */
export function connectionRequired(
  issuer: string,
  provider: Pick<Provider, 'name' | 'displayName'>,
  scopes: readonly string[],
): OAuthError {
  const url = new URL(`${issuer}/connect/${encodeURIComponent(provider.name)}`)
  if (scopes.length > 0) url.searchParams.set('scope', formatScope([...scopes]))
  return new OAuthError(
    'connection_required',
    `the person must connect their ${provider.displayName} account first`,
    {
      reason: `connection-required ${provider.name}`,
      fields: { connect_uri: url.href, connection: provider.name },
    },
  )
}

/** The profiles by `requested_token_type` (issue 13 adds the delegation profile here). */
export const EXCHANGE_PROFILES = new Map<string, ExchangeProfile>([
  [CONNECTION_ACCESS_TOKEN_TYPE, connectionAccessToken],
])

/**
 * The token exchange grant (RFC 8693 §2.1): the subject token must be an active Deputy access
 * token issued to a person (our issuer and signature, not expired, not revoked — the checks of
 * introspection and userinfo), held by a confidential client that received it legitimately;
 * the profile named by `requested_token_type` answers. `actor_token` is for delegation, which
 * no profile here offers, and is refused rather than ignored.
 */
export async function tokenExchangeGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  if (client.tokenEndpointAuthMethod === 'none') {
    throw new OAuthError('unauthorized_client', 'token exchange needs a confidential client', {
      reason: 'public-client',
    })
  }
  // Its subject token is an ID token, which the ID-JAG profile verifies itself.
  if (form.get('requested_token_type') === ID_JAG_TOKEN_TYPE) return idJagExchange(ctx)
  const subjectToken = form.get('subject_token')
  if (!subjectToken) throw invalid('subject_token is required', 'missing-subject-token')
  const subjectTokenType = form.get('subject_token_type')
  if (!subjectTokenType)
    throw invalid('subject_token_type is required', 'missing-subject-token-type')
  if (subjectTokenType !== ACCESS_TOKEN_TYPE) {
    throw invalid(
      `subject_token_type must be ${ACCESS_TOKEN_TYPE}`,
      `unsupported-subject-token-type ${subjectTokenType.slice(0, 100)}`,
    )
  }
  const requestedTokenType = form.get('requested_token_type')
  const profile =
    requestedTokenType === undefined ? undefined : EXCHANGE_PROFILES.get(requestedTokenType)
  if (requestedTokenType === undefined || profile === undefined) {
    // No default: what a caller gets must be what it asked for by name.
    throw invalid(
      `requested_token_type must be ${[...EXCHANGE_PROFILES.keys()].join(' or ')}`,
      `unsupported-requested-token-type ${requestedTokenType?.slice(0, 100) ?? 'none'}`,
    )
  }
  if (form.get('actor_token') !== undefined || form.get('actor_token_type') !== undefined) {
    throw invalid('actor_token is not accepted for this token type', 'actor-token-not-supported')
  }
  if (form.all('resource').length > 0 || form.get('audience') !== undefined) {
    // The connection names the target; a second way to name one would be ambiguous.
    throw invalid('use connection, not resource or audience', 'resource-or-audience-given')
  }
  const subject = await verifyAccessToken(deps, subjectToken)
  if (!subject) throw invalid('the subject_token is invalid or expired', 'subject-token-invalid')
  const inactive = await inactiveReason(deps, subject)
  if (inactive !== null) {
    throw invalid('the subject_token is no longer active', `subject-token-${inactive}`)
  }
  if (subject.sub === subject.client_id) {
    // A client_credentials token names no person, so it has no connected accounts.
    throw invalid('the subject_token does not name a person', 'subject-token-without-person')
  }
  if (!holdsSubjectToken(client, subject)) {
    throw invalid(
      'the subject_token was not issued to this client or for a resource it serves',
      'subject-token-not-held',
    )
  }
  return profile(ctx, subject, requestedTokenType)
}
