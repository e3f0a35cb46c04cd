import type { ProviderEndpoints, ProviderType } from './types.js'

/** How Deputy authenticates to a provider's token endpoint when it has a client secret. */
export type ClientAuthMethod = 'client_secret_post' | 'client_secret_basic'

/** Where a type's profile comes from (providers/profile.ts). */
export type ProfileSource = 'openid' | 'github' | 'slack' | 'userinfo'

/** What Deputy knows about one provider type before the operator says anything. */
export interface CatalogueEntry {
  displayName: string
  /** OpenID Connect types: an issuer, discovery at add time, an ID token with a nonce. */
  openid: boolean
  /** The issuer when the type has a fixed one (Google, Entra's multi-tenant `common`). */
  issuer?: string
  /** Endpoints of a plain OAuth 2.0 type (OpenID types get theirs from discovery). */
  endpoints?: ProviderEndpoints
  scopes: string[]
  clientAuth: ClientAuthMethod
  /**
   * The authorization request parameter that carries the scopes. Slack's OAuth v2 asks for a
   * person's own (user-token) scopes in `user_scope`; `scope` is for the bot's.
   */
  scopeParameter: 'scope' | 'user_scope'
  profile: ProfileSource
  /** How a refresh or an access token is revoked at the provider (providers/revoke.ts). */
  revocation: 'rfc7009' | 'github-grant' | 'slack-auth-revoke'
}

/**
 * Entra ID's multi-tenant tenants (`common`, `organizations`) publish the issuer as a template,
 * `https://login.microsoftonline.com/{tenantid}/v2.0`, and every ID token names the person's own
 * tenant. openid-client knows this and checks the token's `iss` against the template filled with
 * its `tid`, but only on a Configuration made by `discovery()`; see registry.ts.
 */
export const ENTRA_TENANT_TEMPLATE = '{tenantid}'

/** The Entra issuer for a tenant (`common`, `organizations`, `consumers`, or a tenant id). */
export function entraIssuer(tenant = 'common'): string {
  return `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/v2.0`
}

/** The defaults per provider type. Every endpoint can be overridden by the operator. */
export const CATALOGUE: Record<ProviderType, CatalogueEntry> = {
  github: {
    displayName: 'GitHub',
    openid: false,
    endpoints: {
      authorization_endpoint: 'https://github.com/login/oauth/authorize',
      token_endpoint: 'https://github.com/login/oauth/access_token',
      user_api: 'https://api.github.com/user',
      emails_api: 'https://api.github.com/user/emails',
      // DELETE with Basic client_id:client_secret and {"access_token": …}: deletes the grant,
      // so every token of this app for the person goes (revoke.ts).
      revocation_endpoint: 'https://api.github.com/applications/{client_id}/grant',
    },
    scopes: ['read:user', 'user:email'],
    clientAuth: 'client_secret_post',
    scopeParameter: 'scope',
    profile: 'github',
    revocation: 'github-grant',
  },
  slack: {
    displayName: 'Slack',
    openid: false,
    endpoints: {
      authorization_endpoint: 'https://slack.com/oauth/v2/authorize',
      token_endpoint: 'https://slack.com/api/oauth.v2.access',
      user_api: 'https://slack.com/api/users.identity',
      revocation_endpoint: 'https://slack.com/api/auth.revoke',
    },
    scopes: ['identity.basic', 'identity.email'],
    clientAuth: 'client_secret_post',
    scopeParameter: 'user_scope',
    profile: 'slack',
    revocation: 'slack-auth-revoke',
  },
  google: {
    displayName: 'Google',
    openid: true,
    issuer: 'https://accounts.google.com',
    scopes: ['openid', 'email', 'profile'],
    clientAuth: 'client_secret_post',
    scopeParameter: 'scope',
    profile: 'openid',
    revocation: 'rfc7009',
  },
  microsoft: {
    displayName: 'Microsoft',
    openid: true,
    issuer: entraIssuer('common'),
    scopes: ['openid', 'email', 'profile'],
    clientAuth: 'client_secret_post',
    scopeParameter: 'scope',
    profile: 'openid',
    revocation: 'rfc7009',
  },
  oidc: {
    displayName: 'OpenID provider',
    openid: true,
    scopes: ['openid', 'email', 'profile'],
    clientAuth: 'client_secret_basic',
    scopeParameter: 'scope',
    profile: 'openid',
    revocation: 'rfc7009',
  },
  oauth2: {
    displayName: 'OAuth provider',
    openid: false,
    scopes: [],
    clientAuth: 'client_secret_basic',
    scopeParameter: 'scope',
    profile: 'userinfo',
    revocation: 'rfc7009',
  },
}

/** The provider types, in the order people read them. */
export const PROVIDER_TYPES = Object.keys(CATALOGUE) as ProviderType[]
