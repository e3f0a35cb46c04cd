import * as oauth from 'oauth4webapi'

// The MCP server as a confidential OAuth client of Deputy, shared by the approvals (CIBA) and
// connections (token exchange) clients: discovery, client authentication, and the loopback rule.

/** How the MCP server authenticates to Deputy: exactly one of the two. */
export type DeputyClientAuthentication =
  /** `client_secret_basic`. */
  | { readonly clientSecret: string; readonly privateKey?: undefined }
  /** `private_key_jwt` (RFC 7523): the client's private key and the `kid` it registered. */
  | {
      readonly privateKey: { readonly key: CryptoKey; readonly kid?: string }
      readonly clientSecret?: undefined
    }

/** Where and as whom the MCP server talks to Deputy. */
export type DeputyClientOptions = {
  /** Deputy's issuer; its metadata names the endpoints. */
  readonly issuer: string
  readonly clientId: string
} & DeputyClientAuthentication

/** A confidential client of one Deputy, as oauth4webapi's calls take it. */
export interface DeputyClient {
  /** The authorization server's metadata, discovered on first use and kept once it succeeded. */
  server(): Promise<oauth.AuthorizationServer>
  readonly client: oauth.Client
  readonly auth: oauth.ClientAuth
  /** oauth4webapi's request options (plain http allowed only on loopback). */
  readonly requestOptions: { [oauth.allowInsecureRequests]?: boolean }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/** A confidential client of Deputy at `options.issuer`. */
export function deputyClient(options: DeputyClientOptions): DeputyClient {
  const issuer = new URL(options.issuer)
  // Plain http only on loopback (development and tests), as for the resource itself.
  const insecure = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname)
  const requestOptions = insecure ? { [oauth.allowInsecureRequests]: true } : {}
  const auth: oauth.ClientAuth =
    options.privateKey !== undefined
      ? oauth.PrivateKeyJwt(
          options.privateKey.kid === undefined
            ? options.privateKey.key
            : { key: options.privateKey.key, kid: options.privateKey.kid },
        )
      : oauth.ClientSecretBasic(options.clientSecret)
  let discovered: Promise<oauth.AuthorizationServer> | undefined

  return {
    client: { client_id: options.clientId },
    auth,
    requestOptions,
    server() {
      discovered ??= oauth
        .discoveryRequest(issuer, { algorithm: 'oidc', ...requestOptions })
        .then((response) => oauth.processDiscoveryResponse(issuer, response))
      // A failed discovery is tried again on the next call, not remembered.
      discovered.catch(() => {
        discovered = undefined
      })
      return discovered
    },
  }
}
