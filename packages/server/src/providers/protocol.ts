import * as oidc from 'openid-client'
import { CATALOGUE } from './catalogue.js'
import { type Provider, ProviderError, type UpstreamTokens } from './types.js'
import type { UpstreamFetch } from './upstream-fetch.js'

/** What the protocol needs: the guarded fetch, the secret of a provider, and whether http is allowed. */
export interface ProtocolDeps {
  fetch: UpstreamFetch
  /** The provider's client secret, opened from its sealed column; null for a public client. */
  clientSecret(name: string): Promise<string | null>
  allowHttpLoopback: boolean
  now(): number
}

/** Entra's multi-tenant tenants, whose discovered issuer is the `{tenantid}` template. */
function isEntraMultiTenant(provider: Provider): boolean {
  return (
    provider.type === 'microsoft' &&
    provider.issuer !== null &&
    /^https:\/\/login\.microsoftonline\.com\/(common|organizations)\/v2\.0\/?$/.test(
      provider.issuer,
    )
  )
}

/**
 * Plain OAuth 2.0 types have no issuer; openid-client still wants one. The authorization
 * endpoint's origin stands in: such a provider sends no `iss`, and one that did would be
 * compared with it (RFC 9207 §2.4).
 */
function issuerOf(provider: Provider): string {
  return provider.issuer ?? new URL(provider.endpoints.authorization_endpoint).origin
}

/**
 * GitHub answers token errors with 200 and `{"error": …}`, Slack with 200 and `{"ok": false}`,
 * and Slack's OAuth v2 puts a person's own token under `authed_user`. These quirks become plain
 * RFC 6749 answers here, before openid-client reads them.
 */
async function normaliseTokenAnswer(response: Response, provider: Provider): Promise<Response> {
  if (response.status !== 200 || CATALOGUE[provider.type].openid) return response
  const text = await response.text()
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    return new Response(text, { status: response.status, headers: response.headers })
  }
  const headers = { 'content-type': 'application/json' }
  if (typeof body.error === 'string' && typeof body.access_token !== 'string') {
    // GitHub's refresh failure is `bad_refresh_token`: RFC 6749's name for it is invalid_grant.
    const error = ['bad_refresh_token', 'bad_verification_code'].includes(body.error)
      ? 'invalid_grant'
      : body.error
    return new Response(JSON.stringify({ error, error_description: body.error_description }), {
      status: 400,
      headers,
    })
  }
  const user = body.authed_user as Record<string, unknown> | undefined
  if (provider.type === 'slack' && typeof body.access_token !== 'string' && user) {
    body = { ...body, ...user, token_type: 'bearer' }
  }
  if (typeof body.token_type === 'string' && body.token_type.toLowerCase() === 'user')
    body.token_type = 'bearer'
  return new Response(JSON.stringify(body), { status: 200, headers })
}

/** The openid-client Configuration for a provider, from its stored endpoints. */
export function createConfigurations(deps: ProtocolDeps) {
  const entra = new Map<string, Promise<oidc.Configuration>>()

  function customFetchFor(provider: Provider): oidc.CustomFetch {
    return async (url, init) => {
      const response = await deps.fetch.customFetch(url, init)
      return url === provider.endpoints.token_endpoint
        ? normaliseTokenAnswer(response, provider)
        : response
    }
  }

  function clientAuth(provider: Provider, secret: string | null): oidc.ClientAuth {
    if (secret === null) return oidc.None() // PKCE only
    return CATALOGUE[provider.type].clientAuth === 'client_secret_post'
      ? oidc.ClientSecretPost(secret)
      : oidc.ClientSecretBasic(secret)
  }

  async function configuration(provider: Provider): Promise<oidc.Configuration> {
    const secret = await deps.clientSecret(provider.name)
    const execute = deps.allowHttpLoopback ? [oidc.allowInsecureRequests] : []
    if (isEntraMultiTenant(provider)) {
      // Only a discovered Configuration checks an ID token's `iss` against the `{tenantid}`
      // template with its `tid`; discovered once per process and provider version.
      const key = `${provider.name}\n${provider.updatedAt}\n${provider.clientId}`
      let found = entra.get(key)
      if (!found) {
        found = oidc.discovery(
          new URL(provider.issuer as string),
          provider.clientId,
          undefined,
          clientAuth(provider, secret),
          { [oidc.customFetch]: customFetchFor(provider), execute },
        )
        found.catch(() => entra.delete(key))
        entra.set(key, found)
      }
      return found
    }
    const e = provider.endpoints
    const metadata: oidc.ServerMetadata = {
      issuer: issuerOf(provider),
      authorization_endpoint: e.authorization_endpoint,
      token_endpoint: e.token_endpoint,
      ...(e.userinfo_endpoint && { userinfo_endpoint: e.userinfo_endpoint }),
      ...(e.jwks_uri && { jwks_uri: e.jwks_uri }),
      ...(CATALOGUE[provider.type].revocation === 'rfc7009' &&
        e.revocation_endpoint && { revocation_endpoint: e.revocation_endpoint }),
      ...(e.authorization_response_iss_parameter_supported && {
        authorization_response_iss_parameter_supported: true,
      }),
      ...(e.id_token_signing_alg_values_supported && {
        id_token_signing_alg_values_supported: e.id_token_signing_alg_values_supported,
      }),
    }
    const config = new oidc.Configuration(
      metadata,
      provider.clientId,
      undefined,
      clientAuth(provider, secret),
    )
    config[oidc.customFetch] = customFetchFor(provider)
    for (const run of execute) run(config)
    return config
  }

  return { configuration }
}

/** Turns whatever openid-client or the fetch threw into a ProviderError. */
export function toProviderError(err: unknown): ProviderError {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ProviderError) return e
  }
  if (err instanceof oidc.ResponseBodyError) {
    return new ProviderError(err.error, err.error_description ?? `provider answered ${err.error}`, {
      transient: err.status >= 500 || err.status === 429,
      cause: err,
    })
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return new ProviderError(err.error, err.error_description ?? `provider answered ${err.error}`, {
      cause: err,
    })
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    return new ProviderError('invalid_token', 'provider refused the access token', { cause: err })
  }
  if (err instanceof oidc.ClientError) {
    const cause = err.cause as unknown
    const status = cause instanceof Response ? cause.status : 0
    return new ProviderError(
      'invalid_response',
      status ? `provider answered HTTP ${status}` : `provider answer refused: ${err.message}`,
      { transient: status >= 500 || status === 429, cause: err },
    )
  }
  return new ProviderError('invalid_response', 'provider answer could not be used', { cause: err })
}

/** ID token claims openid-client checked, by the tokens object they came with (see profile.ts). */
export const verifiedIdTokenClaims = new WeakMap<UpstreamTokens, Record<string, unknown>>()

/** A token endpoint answer, normalised; Slack separates scopes with commas. */
export function toUpstreamTokens(
  answer: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  now: number,
  fallback: { scopes: string[]; refreshToken: string | null },
): UpstreamTokens {
  const tokens: UpstreamTokens = {
    accessToken: answer.access_token,
    // A provider that does not rotate sends none: the one used stays good.
    refreshToken: answer.refresh_token ?? fallback.refreshToken,
    expiresAt: typeof answer.expires_in === 'number' ? now + answer.expires_in * 1000 : null,
    scopes:
      typeof answer.scope === 'string'
        ? answer.scope.split(/[ ,]+/).filter(Boolean)
        : fallback.scopes,
    idToken: answer.id_token ?? null,
  }
  const claims = answer.claims()
  if (claims) verifiedIdTokenClaims.set(tokens, { ...claims })
  return tokens
}
