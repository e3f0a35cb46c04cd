import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Provider, ProviderError } from '../../src/providers/types.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type FakeGitHub, followGitHubLogin, startFakeGitHub } from '../helpers/upstream-github.js'
import {
  followUpstreamLogin,
  startUpstreamProvider,
  type UpstreamProvider,
} from '../helpers/upstream-provider.js'

const operator = { type: 'user' as const, id: 'operator' }
const redirectUri = 'http://localhost:8080/login/upstream/callback'

function flow() {
  return {
    state: randomBytes(16).toString('base64url'),
    codeVerifier: randomBytes(32).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'),
  }
}

describe('providers: the authorization-code flow through openid-client (issue 12 §1)', () => {
  let deputy: TestDeputy
  let upstream: UpstreamProvider
  let github: FakeGitHub
  let oidcProvider: Provider
  let githubProvider: Provider

  beforeAll(async () => {
    upstream = await startUpstreamProvider()
    github = await startFakeGitHub()
    deputy = await startTestDeputy({ config: { dangerouslyAllowHttpLoopbackProviders: true } })
    oidcProvider = await deputy.deps.providers.add(upstream.providerInput(), operator)
    githubProvider = await deputy.deps.providers.add(
      github.providerInput({ name: 'github' }),
      operator,
    )
  })
  afterAll(async () => {
    await deputy?.dispose()
    await upstream?.close()
    await github?.close()
  })

  it('discovery at add time stores the endpoints and the RFC 9207 iss support', () => {
    expect(oidcProvider.issuer).toBe(upstream.issuer)
    expect(oidcProvider.endpoints.token_endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//)
    expect(oidcProvider.endpoints.jwks_uri).toBeTruthy()
    expect(oidcProvider.endpoints.authorization_response_iss_parameter_supported).toBe(true)
  })

  it('OpenID: authorization URL with PKCE S256, state and nonce; code redeemed; profile from the ID token and userinfo', async () => {
    const f = flow()
    const url = await deputy.deps.providers.authorizationUrl(oidcProvider, {
      redirectUri,
      ...f,
      scopes: oidcProvider.scopes,
    })
    expect(url.searchParams.get('code_challenge_method')).toBe('S256')
    expect(url.searchParams.get('nonce')).toBe(f.nonce)
    expect(url.searchParams.get('state')).toBe(f.state)
    const back = await followUpstreamLogin(url)
    const tokens = await deputy.deps.providers.redeemCallback(oidcProvider, {
      currentUrl: back,
      redirectUri,
      expectedState: f.state,
      codeVerifier: f.codeVerifier,
      nonce: f.nonce,
    })
    expect(tokens.accessToken).toBeTruthy()
    expect(tokens.refreshToken).toBeTruthy()
    expect(tokens.idToken).toBeTruthy()
    expect(tokens.expiresAt).toBeGreaterThan(Date.now())
    const profile = await deputy.deps.providers.profile(oidcProvider, tokens)
    expect(profile).toMatchObject({
      subject: 'alice-sub',
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice',
    })

    const refreshed = await deputy.deps.providers.refresh(
      oidcProvider,
      tokens.refreshToken as string,
    )
    expect(refreshed.accessToken).not.toBe(tokens.accessToken)
    // The rotated-away refresh token is refused: invalid_grant, not transient.
    const reused = await deputy.deps.providers
      .refresh(oidcProvider, tokens.refreshToken as string)
      .catch((e: unknown) => e)
    expect(reused).toBeInstanceOf(ProviderError)
    expect((reused as ProviderError).code).toBe('invalid_grant')
    expect((reused as ProviderError).transient).toBe(false)
  })

  it('a wrong state is refused (CSRF), and so is a wrong nonce', async () => {
    const f = flow()
    const url = await deputy.deps.providers.authorizationUrl(oidcProvider, {
      redirectUri,
      ...f,
      scopes: oidcProvider.scopes,
    })
    const back = await followUpstreamLogin(url)
    const common = { currentUrl: back, redirectUri, codeVerifier: f.codeVerifier }
    await expect(
      deputy.deps.providers.redeemCallback(oidcProvider, {
        ...common,
        expectedState: 'other',
        nonce: f.nonce,
      }),
    ).rejects.toBeInstanceOf(ProviderError)
    await expect(
      deputy.deps.providers.redeemCallback(oidcProvider, {
        ...common,
        expectedState: f.state,
        nonce: 'other-nonce',
      }),
    ).rejects.toBeInstanceOf(ProviderError)
  })

  it('RFC 9207: a callback without iss from a provider that advertises it is refused', async () => {
    const f = flow()
    const url = await deputy.deps.providers.authorizationUrl(oidcProvider, {
      redirectUri,
      ...f,
      scopes: oidcProvider.scopes,
    })
    const back = await followUpstreamLogin(url)
    back.searchParams.delete('iss')
    await expect(
      deputy.deps.providers.redeemCallback(oidcProvider, {
        currentUrl: back,
        redirectUri,
        expectedState: f.state,
        codeVerifier: f.codeVerifier,
        nonce: f.nonce,
      }),
    ).rejects.toBeInstanceOf(ProviderError)
  })

  it('an access_denied callback is ProviderError access_denied', async () => {
    const f = flow()
    upstream.denyNext()
    const url = await deputy.deps.providers.authorizationUrl(oidcProvider, {
      redirectUri,
      ...f,
      scopes: oidcProvider.scopes,
    })
    const back = await followUpstreamLogin(url)
    const err = await deputy.deps.providers
      .redeemCallback(oidcProvider, {
        currentUrl: back,
        redirectUri,
        expectedState: f.state,
        codeVerifier: f.codeVerifier,
        nonce: f.nonce,
      })
      .catch((e: unknown) => e)
    expect((err as ProviderError).code).toBe('access_denied')
  })

  it('a 503 at the token endpoint is transient', async () => {
    upstream.failTokenRequests(1)
    const err = await deputy.deps.providers
      .refresh(oidcProvider, 'whatever')
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderError)
    expect((err as ProviderError).transient).toBe(true)
  })

  it('RFC 7009 revocation at an OpenID provider ends the grant', async () => {
    const f = flow()
    const url = await deputy.deps.providers.authorizationUrl(oidcProvider, {
      redirectUri,
      ...f,
      scopes: oidcProvider.scopes,
    })
    const tokens = await deputy.deps.providers.redeemCallback(oidcProvider, {
      currentUrl: await followUpstreamLogin(url),
      redirectUri,
      expectedState: f.state,
      codeVerifier: f.codeVerifier,
      nonce: f.nonce,
    })
    expect(await deputy.deps.providers.revoke(oidcProvider, tokens)).toBe(true)
    const err = await deputy.deps.providers
      .refresh(oidcProvider, tokens.refreshToken as string)
      .catch((e: unknown) => e)
    expect((err as ProviderError).code).toBe('invalid_grant')
  })

  it('GitHub: code redeemed with PKCE; the profile is /user with the verified primary email; the grant DELETE revokes', async () => {
    const f = flow()
    const url = await deputy.deps.providers.authorizationUrl(githubProvider, {
      redirectUri,
      ...f,
      scopes: githubProvider.scopes,
    })
    expect(url.searchParams.has('nonce')).toBe(false)
    expect(url.searchParams.get('scope')).toBe('read:user user:email')
    const back = await followGitHubLogin(url)
    const tokens = await deputy.deps.providers.redeemCallback(githubProvider, {
      currentUrl: back,
      redirectUri,
      expectedState: f.state,
      codeVerifier: f.codeVerifier,
      nonce: f.nonce,
    })
    const profile = await deputy.deps.providers.profile(githubProvider, tokens)
    expect(profile.claims.github_login).toBe('octocat')
    expect(profile.subject).toMatch(/^\d+$/)
    expect(profile.emailVerified).toBe(true)
    expect(await deputy.deps.providers.revoke(githubProvider, tokens)).toBe(true)
    await expect(deputy.deps.providers.profile(githubProvider, tokens)).rejects.toMatchObject({
      code: 'invalid_token',
    })
  })

  it('GitHub: a bad code (200 with error at GitHub) is ProviderError invalid_grant', async () => {
    const f = flow()
    const back = new URL(`${redirectUri}?code=nonsense&state=${f.state}`)
    const err = await deputy.deps.providers
      .redeemCallback(githubProvider, {
        currentUrl: back,
        redirectUri,
        expectedState: f.state,
        codeVerifier: f.codeVerifier,
        nonce: f.nonce,
      })
      .catch((e: unknown) => e)
    expect((err as ProviderError).code).toBe('invalid_grant')
  })
})
