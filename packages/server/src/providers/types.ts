import type { Actor } from '../audit/types.js'
import type { ProviderType } from '../store/schema.js'

export type { ProviderType }

/** What a provider is used for: signing people in, connecting accounts for their agents. */
export type ProviderUse = 'sign-in' | 'connect'

/**
 * Where a provider lives. The catalogue (providers/catalogue.ts) fills the defaults per type, an
 * OpenID type's come from issuer discovery, and every one can be overridden by the operator, so
 * a test or an enterprise can point a provider at another host.
 */
export interface ProviderEndpoints {
  authorization_endpoint: string
  token_endpoint: string
  /** OpenID Connect userinfo. */
  userinfo_endpoint?: string
  /** RFC 7009 revocation, or the provider's own (GitHub's grant deletion, Slack's auth.revoke). */
  revocation_endpoint?: string
  jwks_uri?: string
  /** A plain-OAuth provider's "who is this" API (GitHub's /user, Slack's users.identity). */
  user_api?: string
  /** GitHub: /user/emails, where `verified` is said per address. */
  emails_api?: string
  /** RFC 9207: the provider sends `iss` in its callbacks, so its absence is refused. From discovery. */
  authorization_response_iss_parameter_supported?: boolean
  /** How the provider signs ID tokens (discovery); openid-client's default RS256 when absent. */
  id_token_signing_alg_values_supported?: string[]
}

/** A configured upstream provider as the rest of Deputy sees it (never its secret). */
export interface Provider {
  name: string
  type: ProviderType
  displayName: string
  clientId: string
  hasClientSecret: boolean
  /** OpenID Connect issuer; null for plain OAuth 2.0 types (github, slack, oauth2). */
  issuer: string | null
  endpoints: ProviderEndpoints
  uses: ProviderUse[]
  /** Scopes asked for at sign-in, and a connection's default. */
  scopes: string[]
  /** Roles a person created just in time by a sign-in gets. */
  defaultRoles: string[]
  /** Confidential clients an operator allowed to exchange for this provider's tokens. */
  allowedClients: string[]
  status: 'active' | 'disabled'
  createdAt: string
  updatedAt: string
}

export interface AddProviderInput {
  name: string
  type: ProviderType
  displayName?: string
  clientId: string
  clientSecret?: string
  issuer?: string
  uses?: ProviderUse[]
  scopes?: string[]
  defaultRoles?: string[]
  allowedClients?: string[]
  /** Overrides of the catalogue's or discovery's endpoints. */
  endpoints?: Partial<ProviderEndpoints>
}

export type UpdateProviderInput = Partial<Omit<AddProviderInput, 'name' | 'type'>>

/**
 * What an upstream account says about the person, normalised across provider types: the
 * stable subject, the email and whether the provider vouches for it, and claims mapped for
 * Deputy (GitHub's login as `github_login` …), usable in access-token claims templates.
 */
export interface UpstreamProfile {
  subject: string
  email: string | null
  emailVerified: boolean
  name: string | null
  /** A short label to show the person (login or email). */
  label: string | null
  claims: Record<string, unknown>
}

/** Tokens a provider answered with at its token endpoint, normalised. */
export interface UpstreamTokens {
  accessToken: string
  refreshToken: string | null
  /** Epoch ms, when the provider said (`expires_in`). */
  expiresAt: number | null
  scopes: string[]
  idToken: string | null
}

/**
 * The registry and the protocol to each provider. The authorization-code flow (PKCE, state,
 * nonce, `iss` check) runs through openid-client; every request to a provider goes through the
 * SSRF-guarded fetch (lib/safe-fetch.ts).
 */
export interface Providers {
  add(input: AddProviderInput, actor: Actor): Promise<Provider>
  update(name: string, input: UpdateProviderInput, actor: Actor): Promise<Provider>
  list(): Promise<Provider[]>
  /** Null for an unknown name. Disabled providers are returned (callers check `status`). */
  get(name: string): Promise<Provider | null>
  setStatus(name: string, status: 'active' | 'disabled', actor: Actor): Promise<Provider>
  remove(name: string, actor: Actor): Promise<void>

  /**
   * The URL to send the browser to, for a flow whose `state`, PKCE verifier and nonce the
   * caller made and keeps (vault/ and identity/ store them in `provider_flows`).
   */
  authorizationUrl(
    provider: Provider,
    request: {
      redirectUri: string
      state: string
      codeVerifier: string
      nonce: string
      scopes: string[]
    },
  ): Promise<URL>
  /**
   * Completes a flow at the callback: checks `state` (and `iss` where the provider sends it),
   * redeems the code with the PKCE verifier, checks the ID token and its nonce for OpenID
   * types. Throws ProviderError on any failure.
   */
  redeemCallback(
    provider: Provider,
    callback: {
      currentUrl: URL
      redirectUri: string
      expectedState: string
      codeVerifier: string
      nonce: string
    },
  ): Promise<UpstreamTokens>
  /** Who the tokens belong to: ID token claims, userinfo, or the provider's user API. */
  profile(provider: Provider, tokens: UpstreamTokens): Promise<UpstreamProfile>
  /** Refresh grant at the provider. `invalid_grant` is ProviderError with code 'invalid_grant'. */
  refresh(provider: Provider, refreshToken: string, scopes?: string[]): Promise<UpstreamTokens>
  /** Revokes upstream where the provider can; false when it has no revocation. */
  revoke(
    provider: Provider,
    tokens: { accessToken: string; refreshToken: string | null },
  ): Promise<boolean>
}

/**
 * A provider refused or failed. `code` is the provider's OAuth error code when it sent one
 * (`invalid_grant`, `access_denied` …), else 'unreachable' / 'invalid_response'; `transient` says
 * whether trying again later may help (network trouble, 5xx, rate limits).
 */
export class ProviderError extends Error {
  readonly code: string
  readonly transient: boolean
  constructor(
    code: string,
    message: string,
    options: { transient?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProviderError'
    this.code = code
    this.transient = options.transient ?? false
  }
}
