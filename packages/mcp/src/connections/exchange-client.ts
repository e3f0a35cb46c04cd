import * as oauth from 'oauth4webapi'
import type { DeputyClient } from '../deputy-client.js'

// RFC 8693 token exchange at Deputy, vault profile (Deputy's docs/vault.md "The exchange"): the
// MCP server presents the person's Deputy access token it verified and gets the short-lived
// access token of the person's connected account at an upstream provider.

/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3. */
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** Deputy's token type for a connected account's access token. */
export const CONNECTION_ACCESS_TOKEN_TYPE =
  'urn:deputy:params:oauth:token-type:connection-access-token'

/** A connected account's access token, as Deputy handed it out (never a refresh token). */
export interface ConnectionToken {
  readonly accessToken: string
  /** Milliseconds since the epoch, when Deputy said. */
  readonly expiresAt: number | undefined
  readonly scopes: readonly string[]
}

/** What one exchange came to. */
export type ExchangeOutcome =
  | { readonly status: 'issued'; readonly token: ConnectionToken }
  /** Deputy's `connection_required`: the person connects the account at `connectUri` first. */
  | { readonly status: 'connection_required'; readonly connectUri: string }

/** Exchanges a person's Deputy access token for a connected account's access token. */
export type ConnectionExchange = (request: {
  readonly subjectToken: string
  readonly provider: string
  readonly scopes: readonly string[]
}) => Promise<ExchangeOutcome>

/** The exchange through Deputy's token endpoint, as `client`. */
export function connectionExchange(deputy: DeputyClient, now: () => number): ConnectionExchange {
  return async ({ subjectToken, provider, scopes }) => {
    const as = await deputy.server()
    const parameters: Record<string, string> = {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: CONNECTION_ACCESS_TOKEN_TYPE,
      connection: provider,
      ...(scopes.length > 0 && { scope: scopes.join(' ') }),
    }
    const response = await oauth.genericTokenEndpointRequest(
      as,
      deputy.client,
      deputy.auth,
      TOKEN_EXCHANGE_GRANT_TYPE,
      parameters,
      deputy.requestOptions,
    )
    try {
      const answer = await oauth.processGenericTokenEndpointResponse(as, deputy.client, response)
      if (answer.issued_token_type !== CONNECTION_ACCESS_TOKEN_TYPE) {
        throw new Error(`Deputy answered a token of type ${String(answer.issued_token_type)}`)
      }
      return {
        status: 'issued',
        token: {
          accessToken: answer.access_token,
          expiresAt:
            typeof answer.expires_in === 'number' ? now() + answer.expires_in * 1000 : undefined,
          scopes: typeof answer.scope === 'string' ? answer.scope.split(' ').filter(Boolean) : [],
        },
      }
    } catch (error) {
      if (
        error instanceof oauth.ResponseBodyError &&
        error.error === 'connection_required' &&
        typeof error.cause.connect_uri === 'string'
      ) {
        return { status: 'connection_required', connectUri: error.cause.connect_uri }
      }
      throw error
    }
  }
}
