import * as oidc from 'openid-client'
import { CATALOGUE } from './catalogue.js'
import { toProviderError } from './protocol.js'
import { type Provider, ProviderError } from './types.js'
import type { UpstreamFetch } from './upstream-fetch.js'

export interface RevokeDeps {
  fetch: UpstreamFetch
  configuration(provider: Provider): Promise<oidc.Configuration>
  clientSecret(name: string): Promise<string | null>
}

function refused(provider: Provider, status: number): ProviderError {
  return new ProviderError(
    'invalid_response',
    `${provider.name} answered ${status} to revocation`,
    {
      transient: status >= 500 || status === 429,
    },
  )
}

/**
 * Revokes a person's tokens at the provider, the provider's way: RFC 7009 (the refresh token,
 * which takes its access tokens with it at a conforming server), GitHub's grant deletion (every
 * token of this app for the person), Slack's auth.revoke. False where there is no way.
 */
export async function revokeUpstream(
  deps: RevokeDeps,
  provider: Provider,
  tokens: { accessToken: string; refreshToken: string | null },
): Promise<boolean> {
  const endpoint = provider.endpoints.revocation_endpoint
  if (!endpoint) return false
  switch (CATALOGUE[provider.type].revocation) {
    case 'rfc7009': {
      const config = await deps.configuration(provider)
      try {
        if (tokens.refreshToken)
          await oidc.tokenRevocation(config, tokens.refreshToken, {
            token_type_hint: 'refresh_token',
          })
        await oidc.tokenRevocation(config, tokens.accessToken, { token_type_hint: 'access_token' })
      } catch (err) {
        throw toProviderError(err)
      }
      return true
    }
    case 'github-grant': {
      // Basic client_id:client_secret is the only authentication this endpoint takes.
      const secret = await deps.clientSecret(provider.name)
      if (secret === null) return false
      const url = endpoint.replace('{client_id}', encodeURIComponent(provider.clientId))
      const basic = Buffer.from(`${provider.clientId}:${secret}`).toString('base64')
      const response = await deps.fetch.request(url, {
        method: 'DELETE',
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Basic ${basic}`,
          'content-type': 'application/json',
          'x-github-api-version': '2022-11-28',
        },
        body: JSON.stringify({ access_token: tokens.accessToken }),
      })
      // 404: the grant is already gone, which is what was asked for.
      if (response.status === 204 || response.status === 404) return true
      throw refused(provider, response.status)
    }
    case 'slack-auth-revoke': {
      const response = await deps.fetch.request(endpoint, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens.accessToken}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: '',
      })
      if (response.status !== 200) throw refused(provider, response.status)
      const answer = JSON.parse(await response.text()) as { ok?: boolean; error?: string }
      // A token already revoked or expired needs no more revoking.
      if (answer.ok === true || answer.error === 'invalid_auth' || answer.error === 'token_revoked')
        return true
      throw new ProviderError(answer.error ?? 'invalid_response', 'Slack refused auth.revoke')
    }
  }
}
