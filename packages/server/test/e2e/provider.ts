/**
 * The client-side OAuth state an MCP host keeps for one server, in memory: what the official SDKs'
 * `OAuthClientProvider` asks a host to store. Every protocol step (discovery, registration, PKCE,
 * the token requests, `iss` and `state` checks) is the SDK's; this only stores what it hands over
 * and remembers the URL it asked to open in a browser.
 */
export class LoopbackOAuthProvider {
  private information: Record<string, unknown> | undefined
  private saved: Record<string, unknown> | undefined
  private verifier = ''
  private discovery: unknown
  private pending: URL | undefined
  /** Every URL the SDK asked the person's browser to open, in order. */
  readonly authorizationUrls: URL[] = []

  readonly redirectUri: string
  private readonly name: string

  constructor(
    redirectUri: string,
    name: string,
    /**
     * A Client ID Metadata Document URL. The SDKs take `clientMetadataUrl` only over https, and a
     * test on loopback has none; so the URL is handed in as the client information, exactly what
     * the SDK stores itself when it picks a metadata document (`{ client_id: clientMetadataUrl }`).
     */
    clientMetadataDocument?: { url: string; issuer: string },
  ) {
    this.redirectUri = redirectUri
    this.name = name
    // Stamped with the authorization server it is for, as the SDK stamps what it stores.
    if (clientMetadataDocument !== undefined)
      this.information = {
        client_id: clientMetadataDocument.url,
        issuer: clientMetadataDocument.issuer,
      }
  }

  get redirectUrl(): string {
    return this.redirectUri
  }

  get clientMetadata() {
    return {
      client_name: this.name,
      redirect_uris: [this.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    }
  }

  clientInformation() {
    return this.information as { client_id: string } | undefined
  }

  saveClientInformation(information: { client_id: string }): void {
    this.information = { ...information }
  }

  tokens() {
    return this.saved as { access_token: string; token_type: string; scope?: string } | undefined
  }

  saveTokens(tokens: { access_token: string; token_type: string }): void {
    this.saved = { ...tokens }
  }

  redirectToAuthorization(authorizationUrl: URL): void {
    this.pending = authorizationUrl
    this.authorizationUrls.push(authorizationUrl)
  }

  saveCodeVerifier(codeVerifier: string): void {
    this.verifier = codeVerifier
  }

  codeVerifier(): string {
    return this.verifier
  }

  saveDiscoveryState(state: unknown): void {
    this.discovery = state
  }

  discoveryState() {
    return this.discovery as never
  }

  /** The client's id at Deputy (a metadata document URL, or the one registration gave). */
  get clientId(): string | undefined {
    const id = this.information?.client_id
    return typeof id === 'string' ? id : undefined
  }

  /** The access token the SDK holds now. */
  get accessToken(): string | undefined {
    const token = this.saved?.access_token
    return typeof token === 'string' ? token : undefined
  }

  /** The URL the SDK asked to open last, once. */
  takeAuthorizationUrl(): URL | undefined {
    const url = this.pending
    this.pending = undefined
    return url
  }
}
