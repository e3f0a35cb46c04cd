import { createRemoteJWKSet, jwtVerify } from 'jose'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signInAndConsent } from '../helpers/sign-in.js'
import { expectPersonClaims, verifyAccessTokenLikeAResourceServer } from './access-token.js'
import {
  type InteropDeputy,
  OTHER_RESOURCE,
  PERSON,
  RESOURCE,
  startInteropDeputy,
} from './fixture.js'

/**
 * Interop with oauth4webapi (panva, npm), an independent OAuth 2 / OIDC client (issue 3 §8). Every
 * protocol step is the library's: discovery, callback validation (state, RFC 9207 iss), code
 * redemption with PKCE, ID token claim checks, userinfo, refresh, client credentials with a
 * secret and with private_key_jwt, revocation, introspection. The person's part runs on Deputy's
 * real sign-in and consent pages over HTTP. Deputy listens on http://127.0.0.1, so every request
 * carries the library's documented allowance for local testing, `allowInsecureRequests`.
 */

const insecure = { [oauth.allowInsecureRequests]: true } as const
const SCOPE = 'openid profile email shop:order'

/**
 * The OAuth error the library rejected with: a ResponseBodyError carrying the `error` code, or, for
 * a 401 with a `WWW-Authenticate` challenge (RFC 6749 §5.2: `invalid_client`), the library's
 * challenge error, whose response body still carries the code.
 */
async function oauthError(promise: Promise<unknown>): Promise<{ status: number; error: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err instanceof oauth.ResponseBodyError) return { status: err.status, error: err.error }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const body = (await err.response.json()) as { error?: string }
    return { status: err.status, error: String(body.error) }
  }
  throw new Error(`expected an OAuth error response, got ${String(err)}`)
}

describe('oauth4webapi against a real Deputy (issue 3 §8)', () => {
  let env: InteropDeputy
  let as: oauth.AuthorizationServer

  beforeAll(async () => {
    env = await startInteropDeputy({ webClientAuth: 'client_secret_basic' })
    const issuer = new URL(env.issuer)
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    )
  })

  afterAll(async () => {
    await env?.close()
  })

  /** Authorization code + PKCE S256 + `resource`, the person signing in and allowing on the pages. */
  async function codeFlow(
    client: oauth.Client,
    clientAuth: oauth.ClientAuth,
    redirectUri: string,
    options: { verifier?: string; resource?: string } = {},
  ) {
    const codeVerifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const nonce = oauth.generateRandomNonce()
    const url = new URL(as.authorization_endpoint as string)
    url.searchParams.set('client_id', client.client_id)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('redirect_uri', redirectUri)
    url.searchParams.set('scope', SCOPE)
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
    url.searchParams.set('code_challenge_method', 'S256')
    url.searchParams.set('state', state)
    url.searchParams.set('nonce', nonce)
    url.searchParams.set('resource', RESOURCE.uri)
    const browser = await signInAndConsent(url, redirectUri, PERSON)
    // RFC 6749 §4.1.2 + RFC 9207 §2.4: state must match, iss must equal the discovered issuer.
    const params = oauth.validateAuthResponse(as, client, browser.callback, state)
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      params,
      redirectUri,
      options.verifier ?? codeVerifier,
      { additionalParameters: { resource: options.resource ?? RESOURCE.uri }, ...insecure },
    )
    return { browser, response, nonce }
  }

  async function redeem(client: oauth.Client, clientAuth: oauth.ClientAuth, redirectUri: string) {
    const { browser, response, nonce } = await codeFlow(client, clientAuth, redirectUri)
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: nonce,
      requireIdToken: true,
    })
    return { browser, tokens }
  }

  it('RFC 8414 §3: discovery is accepted; the issuer is the discovery URL byte for byte', () => {
    expect(as.issuer).toBe(env.issuer)
    expect(as.code_challenge_methods_supported).toContain('S256')
    expect(as.authorization_response_iss_parameter_supported).toBe(true)
    expect(as.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['none', 'client_secret_basic', 'private_key_jwt']),
    )
    for (const endpoint of [
      as.authorization_endpoint,
      as.token_endpoint,
      as.jwks_uri,
      as.revocation_endpoint,
      as.introspection_endpoint,
      as.userinfo_endpoint,
    ]) {
      expect(endpoint?.startsWith(`${env.issuer}/`), String(endpoint)).toBe(true)
    }
  })

  it('OIDC Discovery §4: /.well-known/openid-configuration is accepted too', async () => {
    const issuer = new URL(env.issuer)
    const oidc = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
    )
    expect(oidc.issuer).toBe(env.issuer)
    expect(oidc.id_token_signing_alg_values_supported).toBeDefined()
  })

  it('OAuth 2.1 §4.1 public client: code + PKCE + resource through sign-in and consent, ID token, userinfo', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { browser, tokens } = await redeem(client, oauth.None(), env.publicClient.redirectUri)

    // The person saw the real pages: sign-in, then the consent page naming app and scope.
    expect(browser.visits.map((v) => v.kind)).toEqual(['login', 'consent'])
    const consent = browser.visits[1]?.text ?? ''
    expect(consent).toContain('Interop native app')
    expect(consent).toContain('Order shirts for you')
    expect(browser.callback.searchParams.get('iss')).toBe(env.issuer)

    expect(tokens.token_type.toLowerCase()).toBe('bearer')
    expect(tokens.refresh_token).toBeTruthy()
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: as.jwks_uri as string,
    })
    expectPersonClaims(payload, {
      user: env.user,
      clientId: client.client_id,
      scopes: ['email', 'openid', 'profile', 'shop:order'],
    })

    // RFC 9068 as the library's resource-server helper reads it.
    const atClaims = await oauth.validateJwtAccessToken(
      as,
      new Request('https://shop.example/mcp', {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      }),
      RESOURCE.uri,
      insecure,
    )
    expect(atClaims.sub).toBe(env.user.id)

    // OIDC Core §3.1.3.7: the library checked iss, aud, exp, iat, nonce; the signature too here.
    const idToken = oauth.getValidatedIdTokenClaims(tokens)
    expect(idToken?.sub).toBe(env.user.id)
    expect(idToken?.aud).toBe(client.client_id)
    expect(idToken?.email).toBe(PERSON.email)
    await jwtVerify(tokens.id_token as string, createRemoteJWKSet(new URL(as.jwks_uri as string)), {
      issuer: env.issuer,
      audience: client.client_id,
    })

    // OIDC Core §5.3 through the library, which checks sub against the ID token's.
    const userinfo = await oauth.processUserInfoResponse(
      as,
      client,
      idToken?.sub as string,
      await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
    )
    expect(userinfo).toMatchObject({ sub: env.user.id, name: PERSON.name, email: PERSON.email })
  })

  it('OAuth 2.1 §4.1 confidential client (client_secret_basic): code + PKCE + resource through the pages', async () => {
    const client: oauth.Client = {
      client_id: env.webClient.clientId,
      token_endpoint_auth_method: 'client_secret_basic',
    }
    const { browser, tokens } = await redeem(
      client,
      oauth.ClientSecretBasic(env.webClient.clientSecret),
      env.webClient.redirectUri,
    )
    expect(browser.visits.map((v) => v.kind)).toEqual(['login', 'consent'])
    expect(browser.visits[1]?.text).toContain('Interop web app')
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: as.jwks_uri as string,
    })
    expectPersonClaims(payload, {
      user: env.user,
      clientId: client.client_id,
      scopes: ['email', 'openid', 'profile', 'shop:order'],
    })
    expect(oauth.getValidatedIdTokenClaims(tokens)?.aud).toBe(client.client_id)
  })

  it('RFC 7636 §4.6: a wrong code_verifier is refused with invalid_grant', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { browser, response } = await codeFlow(
      client,
      oauth.None(),
      env.publicClient.redirectUri,
      { verifier: oauth.generateRandomCodeVerifier() },
    )
    // Consent was remembered from the first flow: sign-in, then straight back to the app.
    expect(browser.visits.map((v) => v.kind)).not.toContain('consent')
    const err = await oauthError(oauth.processAuthorizationCodeResponse(as, client, response))
    expect(err.error).toBe('invalid_grant')
  })

  it('RFC 8707 §2.2: a code redeemed for another resource is refused with invalid_target', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { response } = await codeFlow(client, oauth.None(), env.publicClient.redirectUri, {
      resource: OTHER_RESOURCE.uri,
    })
    const err = await oauthError(oauth.processAuthorizationCodeResponse(as, client, response))
    expect(err.error).toBe('invalid_target')
  })

  it('OAuth 2.1 §4.3.1 refresh rotation: a new refresh token each time; the rotated one is refused with invalid_grant', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { tokens } = await redeem(client, oauth.None(), env.publicClient.redirectUri)
    const seen = [tokens.refresh_token as string]
    for (let i = 0; i < 2; i++) {
      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(
          as,
          client,
          oauth.None(),
          seen[seen.length - 1] as string,
          insecure,
        ),
      )
      expect(refreshed.refresh_token).toBeTruthy()
      expect(seen).not.toContain(refreshed.refresh_token)
      seen.push(refreshed.refresh_token as string)
      const payload = await verifyAccessTokenLikeAResourceServer(refreshed.access_token, {
        issuer: env.issuer,
        jwksUri: as.jwks_uri as string,
      })
      expectPersonClaims(payload, {
        user: env.user,
        clientId: client.client_id,
        scopes: ['email', 'openid', 'profile', 'shop:order'],
      })
    }
    // The first token was rotated and its successor used since: reuse (RFC 9700 §4.14.2).
    const err = await oauthError(
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), seen[0] as string, insecure),
      ),
    )
    expect(err.error).toBe('invalid_grant')
    // RFC 9700 §4.14.2: reuse ends the whole family, so the newest token is refused as well.
    const latest = await oauthError(
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(
          as,
          client,
          oauth.None(),
          seen[seen.length - 1] as string,
          insecure,
        ),
      ),
    )
    expect(latest.error).toBe('invalid_grant')
  })

  it('RFC 6749 §4.4 client credentials with client_secret_basic: a token for the resource, sub = client', async () => {
    const client: oauth.Client = {
      client_id: env.secretAgent.clientId,
      token_endpoint_auth_method: 'client_secret_basic',
    }
    const tokens = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(
        as,
        client,
        oauth.ClientSecretBasic(env.secretAgent.clientSecret),
        { scope: 'shop:order', resource: RESOURCE.uri },
        insecure,
      ),
    )
    expect(tokens.refresh_token).toBeUndefined()
    const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
      issuer: env.issuer,
      jwksUri: as.jwks_uri as string,
    })
    expect(payload).toMatchObject({
      sub: client.client_id,
      client_id: client.client_id,
      aud: RESOURCE.uri,
      scope: 'shop:order',
    })
    expect(payload.favorite_song).toBeUndefined()
  })

  it('RFC 6749 §2.3.1: client credentials with a wrong secret are refused with invalid_client', async () => {
    const client: oauth.Client = { client_id: env.secretAgent.clientId }
    const err = await oauthError(
      oauth.processClientCredentialsResponse(
        as,
        client,
        await oauth.clientCredentialsGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic('not-the-secret'),
          { scope: 'shop:order' },
          insecure,
        ),
      ),
    )
    expect(err).toEqual({ status: 401, error: 'invalid_client' })
  })

  it('RFC 7523 §2.2 client credentials with private_key_jwt: the library signs, Deputy verifies against the registered JWKS', async () => {
    const client: oauth.Client = {
      client_id: env.keyAgent.clientId,
      token_endpoint_auth_method: 'private_key_jwt',
    }
    const auth = oauth.PrivateKeyJwt({ key: env.keyAgent.privateKey, kid: env.keyAgent.kid })
    for (const scope of ['shop:order', 'shop:read']) {
      // Two requests: each carries a fresh assertion (jti), so neither is a replay.
      const tokens = await oauth.processClientCredentialsResponse(
        as,
        client,
        await oauth.clientCredentialsGrantRequest(
          as,
          client,
          auth,
          { scope, resource: RESOURCE.uri },
          insecure,
        ),
      )
      const payload = await verifyAccessTokenLikeAResourceServer(tokens.access_token, {
        issuer: env.issuer,
        jwksUri: as.jwks_uri as string,
      })
      expect(payload).toMatchObject({ sub: client.client_id, client_id: client.client_id, scope })
    }
  })

  it('RFC 7523 §3: an assertion signed by a key the client did not register is refused with invalid_client', async () => {
    const client: oauth.Client = { client_id: env.keyAgent.clientId }
    const other = await oauth.generateKeyPair('ES256')
    const err = await oauthError(
      oauth.processClientCredentialsResponse(
        as,
        client,
        await oauth.clientCredentialsGrantRequest(
          as,
          client,
          oauth.PrivateKeyJwt({ key: other.privateKey, kid: env.keyAgent.kid }),
          { scope: 'shop:order' },
          insecure,
        ),
      ),
    )
    expect(err).toEqual({ status: 400, error: 'invalid_client' })
  })

  it('RFC 7662 §2: an authenticated resource server introspects a person token (active, scope, client_id, sub, aud)', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { tokens } = await redeem(client, oauth.None(), env.publicClient.redirectUri)
    const rs: oauth.Client = { client_id: env.resourceServer.clientId }
    const rsAuth = oauth.ClientSecretBasic(env.resourceServer.clientSecret)
    const result = await oauth.processIntrospectionResponse(
      as,
      rs,
      await oauth.introspectionRequest(as, rs, rsAuth, tokens.access_token, insecure),
    )
    expect(result).toMatchObject({
      active: true,
      client_id: client.client_id,
      sub: env.user.id,
      aud: RESOURCE.uri,
    })
    expect(result.scope?.split(' ').sort()).toEqual(['email', 'openid', 'profile', 'shop:order'])
  })

  it('RFC 7662 §2.1: a public client cannot introspect (the endpoint requires client authentication)', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const agent = await oauth.processClientCredentialsResponse(
      as,
      { client_id: env.secretAgent.clientId },
      await oauth.clientCredentialsGrantRequest(
        as,
        { client_id: env.secretAgent.clientId },
        oauth.ClientSecretBasic(env.secretAgent.clientSecret),
        { scope: 'shop:order' },
        insecure,
      ),
    )
    const err = await oauthError(
      oauth.processIntrospectionResponse(
        as,
        client,
        await oauth.introspectionRequest(as, client, oauth.None(), agent.access_token, insecure),
      ),
    )
    expect(err).toEqual({ status: 400, error: 'invalid_client' })
  })

  it('RFC 7009 §2: the client revokes its access token and refresh token; introspection then says active:false', async () => {
    const client: oauth.Client = { client_id: env.publicClient.clientId }
    const { tokens } = await redeem(client, oauth.None(), env.publicClient.redirectUri)
    const rs: oauth.Client = { client_id: env.resourceServer.clientId }
    const rsAuth = oauth.ClientSecretBasic(env.resourceServer.clientSecret)
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        as,
        rs,
        await oauth.introspectionRequest(as, rs, rsAuth, token, insecure),
      )
    expect((await introspect(tokens.access_token)).active).toBe(true)
    expect((await introspect(tokens.refresh_token as string)).active).toBe(true)

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), tokens.access_token, {
        additionalParameters: { token_type_hint: 'access_token' },
        ...insecure,
      }),
    )
    expect(await introspect(tokens.access_token)).toEqual({ active: false })

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token as string, {
        additionalParameters: { token_type_hint: 'refresh_token' },
        ...insecure,
      }),
    )
    expect(await introspect(tokens.refresh_token as string)).toEqual({ active: false })
    const err = await oauthError(
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(
          as,
          client,
          oauth.None(),
          tokens.refresh_token as string,
          insecure,
        ),
      ),
    )
    expect(err.error).toBe('invalid_grant')
  })
})
