import type { Provider } from '../../providers/types.js'
import { type Vault, VaultError } from '../../vault/types.js'
import { OAuthError } from '../errors.js'
import { formatScope, parseScope } from '../scopes.js'
import { DELEGATION_PROFILE } from './delegation.js'
import {
  ACCESS_TOKEN_TYPE,
  activeAccessToken,
  audiences,
  type ExchangeProfile,
  type ExchangeRequest,
  holdsSubjectToken,
  invalid,
} from './exchange-profile.js'
import type { GrantContext, GrantResult } from './grant.js'
import { ID_JAG_TOKEN_TYPE, idJagExchange } from './id-jag-exchange.js'

export { ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE } from './exchange-profile.js'

// RFC 8693 token exchange at /token, one profile per `requested_token_type` (a registry, as the
// grant types are): delegation (issue 13 §1, grants/delegation.ts: a Deputy access token with an
// `act` chain, the default) and the vault's (issue 12 §5), where the caller — an MCP server or
// agent holding the person's Deputy access token — gets a short-lived upstream access token of
// the person's connected account.

/**
 * Deputy's token type: the access token of a person's connected account at an upstream provider,
 * from the vault (docs/vault.md "The exchange"). Only ever an access token, never its refresh token.
 */
export const CONNECTION_ACCESS_TOKEN_TYPE =
  'urn:deputy:params:oauth:token-type:connection-access-token'

/**
 * The vault profile: a person's active access token held by a client that received it
 * legitimately, `connection=<provider>`, an optional narrower `scope`, and the person's
 * connected account's current access token back (refreshed ahead of expiry by the vault). Only a
 * client the operator allowed for that provider; no usable connection (none, needs reconnecting,
 * fewer scopes than asked) is Deputy's `connection_required` with the link the person follows.
 * `actor_token` is for delegation and is refused rather than ignored.
 */
async function connectionAccessToken(
  ctx: GrantContext,
  { subjectToken, requestedTokenType, actor }: ExchangeRequest,
): Promise<GrantResult> {
  const { deps, client, form } = ctx
  if (actor !== undefined) {
    throw invalid('actor_token is not accepted for this token type', 'actor-token-not-supported')
  }
  if (form.all('resource').length > 0 || form.get('audience') !== undefined) {
    // The connection names the target; a second way to name one would be ambiguous.
    throw invalid('use connection, not resource or audience', 'resource-or-audience-given')
  }
  const subject = await activeAccessToken(ctx, subjectToken, 'subject_token')
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
    // Who asked (the MCP server, authenticated), for whom (the person) through which agent
    // (the subject token's client), for which provider.
    exchanged: {
      onBehalfOf: { type: 'user', id: userId },
      delegationChain: [{ type: 'client', id: subject.client_id }],
      target: { type: 'connection', id: provider.name },
      data: {
        agentClientId: subject.client_id,
        userId,
        provider: provider.name,
        requestedTokenType,
        scopes: token.scopes,
        subjectTokenJti: subject.jti,
        subjectAudience: audiences(subject),
        expiresAt: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString(),
      },
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

/** The profiles by `requested_token_type`; delegation is the default (grants/delegation.ts). */
export const EXCHANGE_PROFILES = new Map<string, ExchangeProfile>([
  [ACCESS_TOKEN_TYPE, DELEGATION_PROFILE],
  [
    CONNECTION_ACCESS_TOKEN_TYPE,
    { subjectTokenTypes: [ACCESS_TOKEN_TYPE], exchange: connectionAccessToken },
  ],
])

/**
 * The token exchange grant (RFC 8693 §2.1), for confidential clients: the request's shape is
 * checked here, and the profile named by `requested_token_type` (RFC 8693's `access_token` when
 * absent: delegation) checks the tokens and answers.
 */
export async function tokenExchangeGrant(ctx: GrantContext): Promise<GrantResult> {
  const { client, form } = ctx
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
  const requestedTokenType = form.get('requested_token_type') ?? ACCESS_TOKEN_TYPE
  const profile = EXCHANGE_PROFILES.get(requestedTokenType)
  if (profile === undefined) {
    throw invalid(
      `requested_token_type must be ${[...EXCHANGE_PROFILES.keys()].join(' or ')}`,
      `unsupported-requested-token-type ${requestedTokenType.slice(0, 100)}`,
    )
  }
  if (!profile.subjectTokenTypes.includes(subjectTokenType)) {
    throw invalid(
      `subject_token_type must be ${profile.subjectTokenTypes.join(' or ')}`,
      `unsupported-subject-token-type ${subjectTokenType.slice(0, 100)}`,
    )
  }
  // RFC 8693 §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT come without it.
  const actorToken = form.get('actor_token')
  const actorTokenType = form.get('actor_token_type')
  if ((actorToken === undefined) !== (actorTokenType === undefined)) {
    throw invalid(
      'actor_token and actor_token_type come together or not at all',
      'actor-token-type-mismatch',
    )
  }
  const actor =
    actorToken !== undefined && actorTokenType !== undefined
      ? { token: actorToken, tokenType: actorTokenType }
      : undefined
  return profile.exchange(ctx, { subjectToken, subjectTokenType, requestedTokenType, actor })
}
