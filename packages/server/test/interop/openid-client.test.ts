import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signInAndConsent } from '../helpers/sign-in.js'
import { expectPersonClaims, verifyAccessTokenLikeAResourceServer } from './access-token.js'
import { type InteropDeputy, PERSON, RESOURCE, startInteropDeputy } from './fixture.js'

/**
 * Interop with openid-client (panva, npm), the certified OpenID Connect relying party (issue 3 §8).
 * The library discovers Deputy, builds the authorization URL, validates the callback (state,
 * RFC 9207 iss), redeems the code with PKCE, validates the ID token (signature included:
 * non-repudiation checks are on), and makes every other call. The person's part runs on Deputy's
 * real sign-in and consent pages over HTTP. Deputy listens on http://127.0.0.1, so every
 * configuration runs the library's documented allowance for local testing, `allowInsecureRequests`.
 */

const SCOPE = 'openid profile email shop:order'
const ALL_SCOPES = ['email', 'openid', 'profile', 'shop:order']

/** The OAuth error code the library rejected with (a 401 challenge carries it in the body). */
async function oauthError(promise: Promise<unknown>): Promise<{ status: number; error: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err instanceof client.ResponseBodyError) return { status: err.status, error: err.error }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    const body = (await err.response.json()) as { error?: string }
    return { status: err.status, error: String(body.error) }
  }
  throw new Error(`expected an OAuth error response, got ${String(err)}`)
}

describe('openid-client against a real Deputy (issue 3 §8)', () => {
  let env: InteropDeputy

  beforeAll(async () => {
    env = await startInteropDeputy({ webClientAuth: 'client_secret_post' })
  })

  afterAll(async () => {
    await env?.close()
  })

  async function configure(
    clientId: string,
    auth: client.ClientAuth,
    metadata?: Partial<client.ClientMetadata>,
  ): Promise<client.Configuration> {
    const config = await client.discovery(new URL(env.issuer), clientId, metadata, auth, {
      execute: [client.allowInsecureRequests],
    })
    // Verify ID token signatures against Deputy's JWKS, not only their claims.
    client.enableNonRepudiationChecks(config)
    return config
  }

  const publicConfig = () => configure(env.publicClient.clientId, client.None())
  const webConfig = () =>
    configure(env.webClient.clientId, client.ClientSecretPost(env.webClient.clientSecret))
  const resourceServerConfig = () =>
    configure(
      env.resourceServer.clientId,
      client.ClientSecretBasic(env.resourceServer.clientSecret),
    )

  /** Authorization code + PKCE S256 + `resource`: the library builds the URL, the person acts. */
  async function authorize(
    config: client.Configuration,
    redirectUri: string,
    extra: Record<string, string> = {},
    decision: 'allow' | 'deny' = 'allow',
  ) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      resource: RESOURCE.uri,
      ...extra,
    })
    const browser = await signInAndConsent(url, redirectUri, PERSON, decision)
    const checks = { pkceCodeVerifier, expectedState: state, expectedNonce: nonce }
    return { url, browser, checks }
  }

  async function codeFlow(config: client.Configuration, redirectUri: string) {
    const { url, browser, checks } = await authorize(config, redirectUri)
    const tokens = await client.authorizationCodeGrant(
      config,
      browser.callback,
      { ...checks, idTokenExpected: true },
      { resource: RESOURCE.uri },
    )
    return { url, browser, tokens }
  }

  it('RFC 8414 / OIDC Discovery: the library accepts the metadata; the issuer is the URL byte for byte', async () => {
    const config = await publicConfig()
    const metadata = config.serverMetadata()
    expect(metadata.issuer).toBe(env.issuer)
    expect(metadata.code_challenge_methods_supported).toContain('S256')
    expect(metadata.supportsPKCE('S256')).toBe(true)
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true)
  })

  it('OAuth 2.1 §4.1 public client: code + PKCE + resource through sign-in and consent, ID token, userinfo', async () => {
    const config = await publicConfig()
    const { url, browser, tokens } = await codeFlow(config, env.publicClient.redirectUri)

    expect(url.origin + url.pathname).toBe(`${env.issuer}/authorize`)
    expect(url.searchParams.get('client_id')).toBe(env.publicClient.clientId)
    expect(browser.visits.map((v) => v.kind)).toEqual(['login', 'consent'])
    expect(browser.visits[1]?.text).toContain('Order shirts for you')
    expect(browser.callback.searchParams.get('iss')).toBe(env.issuer)

    expect(tokens.token_type.toLowerCase()).toBe('bearer')
    expect(tokens.refresh_token).toBeTruthy()
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: config.serverMetadata().jwks_uri as string,
    })
    expectPersonClaims(payload, {
      user: env.user,
      clientId: env.publicClient.clientId,
      scopes: ALL_SCOPES,
    })

    // OIDC Core §3.1.3.7, checked by the library (signature, iss, aud, exp, iat, nonce).
    const idToken = tokens.claims()
    expect(idToken).toMatchObject({
      iss: env.issuer,
      sub: env.user.id,
      aud: env.publicClient.clientId,
      name: PERSON.name,
      email: PERSON.email,
    })

    // OIDC Core §5.3: the library checks that sub equals the ID token's.
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, env.user.id)
    expect(userinfo).toMatchObject({ sub: env.user.id, name: PERSON.name, email: PERSON.email })
  })

  it('OAuth 2.1 §4.1 confidential client (client_secret_post): code + PKCE + resource through the pages', async () => {
    const config = await webConfig()
    const { browser, tokens } = await codeFlow(config, env.webClient.redirectUri)
    expect(browser.visits.map((v) => v.kind)).toEqual(['login', 'consent'])
    expect(browser.visits[1]?.text).toContain('Interop web app')
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: config.serverMetadata().jwks_uri as string,
    })
    expectPersonClaims(payload, {
      user: env.user,
      clientId: env.webClient.clientId,
      scopes: ALL_SCOPES,
    })
    expect(tokens.claims()?.aud).toBe(env.webClient.clientId)
  })

  it('RFC 9207 §2.4: a callback whose iss is not the issuer is rejected by the library', async () => {
    const config = await webConfig()
    // Consent was remembered by the previous test: sign-in, then straight back to the app.
    const { browser, checks } = await authorize(config, env.webClient.redirectUri)
    expect(browser.visits.map((v) => v.kind)).not.toContain('consent')
    const forged = new URL(browser.callback)
    forged.searchParams.set('iss', 'http://127.0.0.1:1')
    const refused = await client
      .authorizationCodeGrant(config, forged, checks, { resource: RESOURCE.uri })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(refused).toBeInstanceOf(client.ClientError)
    // The library's reason, e.g. 'unexpected "iss" (issuer) response parameter value'.
    expect(String((refused as { cause?: { message?: string } }).cause?.message)).toMatch(/"iss"/)
    // The untouched callback still redeems: the refusal was the iss, nothing else.
    const tokens = await client.authorizationCodeGrant(config, browser.callback, checks, {
      resource: RESOURCE.uri,
    })
    expect(tokens.access_token).toBeTruthy()
  })

  it('RFC 6749 §4.1.2.1: Deny on the consent page returns access_denied with state and iss', async () => {
    const config = await publicConfig()
    // prompt=consent asks again although consent is remembered (OIDC Core §3.1.2.1).
    const { browser, checks } = await authorize(
      config,
      env.publicClient.redirectUri,
      { prompt: 'consent' },
      'deny',
    )
    expect(browser.visits.map((v) => v.kind)).toEqual(['login', 'consent'])
    expect(browser.callback.searchParams.get('iss')).toBe(env.issuer)
    const err = await client.authorizationCodeGrant(config, browser.callback, checks).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(client.AuthorizationResponseError)
    expect((err as client.AuthorizationResponseError).error).toBe('access_denied')
  })

  it('OAuth 2.1 §4.3.1 refresh rotation: a new refresh token each time; the rotated one is refused with invalid_grant', async () => {
    const config = await publicConfig()
    const { tokens } = await codeFlow(config, env.publicClient.redirectUri)
    const seen = [tokens.refresh_token as string]
    for (let i = 0; i < 2; i++) {
      const refreshed = await client.refreshTokenGrant(config, seen[seen.length - 1] as string)
      expect(refreshed.refresh_token).toBeTruthy()
      expect(seen).not.toContain(refreshed.refresh_token)
      seen.push(refreshed.refresh_token as string)
      const payload = await verifyAccessTokenLikeAResourceServer(refreshed.access_token, {
        issuer: env.issuer,
        jwksUri: config.serverMetadata().jwks_uri as string,
      })
      expectPersonClaims(payload, {
        user: env.user,
        clientId: env.publicClient.clientId,
        scopes: ALL_SCOPES,
      })
    }
    const err = await oauthError(client.refreshTokenGrant(config, seen[0] as string))
    expect(err.error).toBe('invalid_grant')
    // RFC 9700 §4.14.2: reuse ends the whole family, so the newest token is refused as well.
    const latest = await oauthError(
      client.refreshTokenGrant(config, seen[seen.length - 1] as string),
    )
    expect(latest.error).toBe('invalid_grant')
  })

  it('OAuth 2.1 §4.3 refresh for a confidential client (client_secret_post) rotates too', async () => {
    const config = await webConfig()
    const { tokens } = await codeFlow(config, env.webClient.redirectUri)
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string, {
      scope: 'shop:order',
    })
    expect(refreshed.refresh_token).toBeTruthy()
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token)
    // RFC 6749 §6: a narrower scope may be asked for on refresh.
    expect(refreshed.scope).toBe('shop:order')
    const err = await oauthError(
      client.refreshTokenGrant(config, tokens.refresh_token as string, {
        scope: 'shop:order shop:read',
      }),
    )
    expect(err.error).toBe('invalid_scope')
  })

  it('RFC 6749 §4.4 client credentials with client_secret_basic', async () => {
    const config = await configure(
      env.secretAgent.clientId,
      client.ClientSecretBasic(env.secretAgent.clientSecret),
    )
    const tokens = await client.clientCredentialsGrant(config, {
      scope: 'shop:order',
      resource: RESOURCE.uri,
    })
    expect(tokens.refresh_token).toBeUndefined()
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: config.serverMetadata().jwks_uri as string,
    })
    expect(payload).toMatchObject({
      sub: env.secretAgent.clientId,
      client_id: env.secretAgent.clientId,
      aud: RESOURCE.uri,
      scope: 'shop:order',
    })
  })

  it('RFC 6749 §3.3: client credentials for a scope the client is not allowed is refused with invalid_scope', async () => {
    const config = await configure(
      env.secretAgent.clientId,
      client.ClientSecretBasic(env.secretAgent.clientSecret),
    )
    const err = await oauthError(client.clientCredentialsGrant(config, { scope: 'shop:read' }))
    expect(err.error).toBe('invalid_scope')
  })

  it('RFC 7523 §2.2 client credentials with private_key_jwt: the library signs with the client key', async () => {
    const config = await configure(
      env.keyAgent.clientId,
      client.PrivateKeyJwt({ key: env.keyAgent.privateKey, kid: env.keyAgent.kid }),
    )
    const tokens = await client.clientCredentialsGrant(config, {
      scope: 'shop:order shop:read',
      resource: RESOURCE.uri,
    })
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: config.serverMetadata().jwks_uri as string,
    })
    expect(payload).toMatchObject({
      sub: env.keyAgent.clientId,
      client_id: env.keyAgent.clientId,
      scope: 'shop:order shop:read',
    })
    // The same key also authenticates at the introspection endpoint: its own token is active.
    const own = await client.tokenIntrospection(config, tokens.access_token)
    expect(own).toMatchObject({ active: true, client_id: env.keyAgent.clientId })
  })

  it('RFC 7523 §3: private_key_jwt with a secret-auth client id is refused with invalid_client', async () => {
    // The secret agent registered client_secret_basic; a signed assertion is not its method.
    const config = await configure(
      env.secretAgent.clientId,
      client.PrivateKeyJwt({ key: env.keyAgent.privateKey, kid: env.keyAgent.kid }),
    )
    const err = await oauthError(client.clientCredentialsGrant(config, { scope: 'shop:order' }))
    expect(err).toEqual({ status: 400, error: 'invalid_client' })
  })

  it('RFC 7662 §2: an authenticated resource server introspects a person token (active, scope, client_id, sub, aud)', async () => {
    const { tokens } = await codeFlow(await publicConfig(), env.publicClient.redirectUri)
    const result = await client.tokenIntrospection(
      await resourceServerConfig(),
      tokens.access_token,
    )
    expect(result).toMatchObject({
      active: true,
      client_id: env.publicClient.clientId,
      sub: env.user.id,
      aud: RESOURCE.uri,
    })
    expect(result.scope?.split(' ').sort()).toEqual(ALL_SCOPES)
  })

  it("RFC 7662 §4: a confidential client without the introspection scope learns nothing of another client's token", async () => {
    const { tokens } = await codeFlow(await publicConfig(), env.publicClient.redirectUri)
    const agent = await configure(
      env.secretAgent.clientId,
      client.ClientSecretBasic(env.secretAgent.clientSecret),
    )
    expect(await client.tokenIntrospection(agent, tokens.access_token)).toEqual({ active: false })
  })

  it('RFC 7009 §2: the library revokes the access token, then the refresh token; introspection says active:false', async () => {
    const config = await webConfig()
    const { tokens } = await codeFlow(config, env.webClient.redirectUri)
    const rs = await resourceServerConfig()
    expect((await client.tokenIntrospection(rs, tokens.access_token)).active).toBe(true)

    await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' })
    expect(await client.tokenIntrospection(rs, tokens.access_token)).toEqual({ active: false })
    // RFC 6750 §3.1: the revoked token no longer opens userinfo either.
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, env.user.id).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(userinfo).toBeInstanceOf(client.WWWAuthenticateChallengeError)

    await client.tokenRevocation(config, tokens.refresh_token as string)
    expect(await client.tokenIntrospection(rs, tokens.refresh_token as string)).toEqual({
      active: false,
    })
    const err = await oauthError(client.refreshTokenGrant(config, tokens.refresh_token as string))
    expect(err.error).toBe('invalid_grant')
  })
})
