import * as oauth from 'oauth4webapi'
import { type DeputyClientAuthentication, deputyClient } from '../deputy-client.js'

// The MCP server as a confidential client of OpenID CIBA Core 1.0 (poll mode) at Deputy: it asks
// Deputy to ask the person, then polls the token endpoint for the outcome. oauth4webapi does the
// protocol (discovery, client authentication, response checks, the ID token's claims).

/** How the MCP server authenticates as a CIBA client: exactly one of the two. */
export type CibaClientAuthentication = DeputyClientAuthentication

/** Where and as whom the MCP server asks for approvals. */
export type CibaClientOptions = {
  /** Deputy's issuer; its metadata names the backchannel and token endpoints. */
  readonly issuer: string
  readonly clientId: string
} & CibaClientAuthentication

/** What a backchannel authentication request asks (CIBA §7.1). */
export interface BackchannelAsk {
  /** Who decides: Deputy's `login_hint`. */
  readonly loginHint: string
  readonly bindingMessage: string
  /** RFC 9396 authorization details, exactly what the person approves. */
  readonly authorizationDetails: readonly Record<string, unknown>[]
  /** RFC 8707: the resource the token will be for. */
  readonly resource: string
  readonly scope: string
  readonly requestedExpiry?: number
}

/** Deputy's answer: the handle to poll with, and where the person decides (its extensions). */
export interface BackchannelStarted {
  readonly authReqId: string
  readonly expiresIn: number
  readonly interval: number
  /** Deputy's `approval_id`: the approval request's id, named by the tool call's audit records. */
  readonly approvalId: string | undefined
  /** Deputy's `approval_uri`: the person's page for this request. */
  readonly approvalUri: string | undefined
}

/** One poll of the token endpoint (CIBA §10.1, §11). */
export type PollOutcome =
  | { readonly status: 'approved'; readonly accessToken: string }
  | { readonly status: 'pending' }
  | { readonly status: 'slow_down' }
  | { readonly status: 'denied' }
  | { readonly status: 'expired' }
  /** Unknown, of another client, or already used (`invalid_grant`). */
  | { readonly status: 'invalid' }

/** A CIBA client for one issuer. */
export interface CibaClient {
  start(ask: BackchannelAsk): Promise<BackchannelStarted>
  poll(authReqId: string): Promise<PollOutcome>
}

/** A CIBA client; discovery happens on first use and is kept once it succeeded. */
export function cibaClient(options: CibaClientOptions): CibaClient {
  const { client, auth, requestOptions, server } = deputyClient(options)

  return {
    async start(ask) {
      const as = await server()
      const parameters: Record<string, string> = {
        scope: ask.scope,
        login_hint: ask.loginHint,
        binding_message: ask.bindingMessage,
        resource: ask.resource,
        authorization_details: JSON.stringify(ask.authorizationDetails),
        ...(ask.requestedExpiry !== undefined && {
          requested_expiry: String(ask.requestedExpiry),
        }),
      }
      const response = await oauth.backchannelAuthenticationRequest(
        as,
        client,
        auth,
        parameters,
        requestOptions,
      )
      const started = await oauth.processBackchannelAuthenticationResponse(as, client, response)
      return {
        authReqId: started.auth_req_id,
        expiresIn: started.expires_in,
        // CIBA §7.3: no interval means 5 seconds.
        interval: typeof started.interval === 'number' ? started.interval : 5,
        approvalId: typeof started.approval_id === 'string' ? started.approval_id : undefined,
        approvalUri: typeof started.approval_uri === 'string' ? started.approval_uri : undefined,
      }
    },

    async poll(authReqId) {
      const as = await server()
      const response = await oauth.backchannelAuthenticationGrantRequest(
        as,
        client,
        auth,
        authReqId,
        requestOptions,
      )
      try {
        const tokens = await oauth.processBackchannelAuthenticationGrantResponse(
          as,
          client,
          response,
        )
        return { status: 'approved', accessToken: tokens.access_token }
      } catch (error) {
        if (!(error instanceof oauth.ResponseBodyError)) throw error
        switch (error.error) {
          case 'authorization_pending':
            return { status: 'pending' }
          case 'slow_down':
            return { status: 'slow_down' }
          case 'access_denied':
            return { status: 'denied' }
          case 'expired_token':
            return { status: 'expired' }
          case 'invalid_grant':
            return { status: 'invalid' }
          default:
            throw error
        }
      }
    },
  }
}
