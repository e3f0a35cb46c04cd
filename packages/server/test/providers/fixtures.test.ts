import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstreamApi, type UpstreamApi } from '../helpers/upstream-api.js'
import { followGitHubLogin, startFakeGitHub } from '../helpers/upstream-github.js'
import {
  followUpstreamLogin,
  startUpstreamProvider,
  type UpstreamProvider,
} from '../helpers/upstream-provider.js'

/**
 * The upstream fixtures the issue-12 tests stand on, shown with a real client (openid-client):
 * what a test can count on from the local OpenID provider, its stand-in API, and the fake GitHub.
 */

const callback = 'http://127.0.0.1:9/callback'

describe('upstream OpenID provider fixture', () => {
  let upstream: UpstreamProvider
  let api: UpstreamApi
  let config: client.Configuration

  beforeAll(async () => {
    upstream = await startUpstreamProvider({ redirectUris: [callback] })
    api = await startUpstreamApi({ provider: upstream })
    config = await client.discovery(
      new URL(upstream.issuer),
      upstream.clientId,
      undefined,
      client.ClientSecretPost(upstream.clientSecret),
      { execute: [client.allowInsecureRequests] },
    )
  })
  afterAll(async () => {
    await api?.close()
    await upstream?.close()
  })

  async function signIn(as?: string, cfg = config) {
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: callback,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    upstream.loginAs = as
    const back = await followUpstreamLogin(url)
    return client.authorizationCodeGrant(cfg, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    })
  }

  it('is discovered, with RFC 9207 iss and S256 PKCE', () => {
    const meta = config.serverMetadata()
    expect(meta.issuer).toBe(upstream.issuer)
    expect(meta.authorization_response_iss_parameter_supported).toBe(true)
    expect(meta.code_challenge_methods_supported).toEqual(['S256'])
    expect(meta.introspection_endpoint).toBeDefined()
    expect(meta.revocation_endpoint).toBeDefined()
    expect(upstream.providerInput({ name: 'acme' })).toMatchObject({
      name: 'acme',
      type: 'oidc',
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
    })
  })

  it('runs a code flow with PKCE through the scripted login, with a refresh token and claims', async () => {
    const tokens = await signIn('alice-sub')
    const claims = tokens.claims()
    expect(claims?.sub).toBe('alice-sub')
    expect(claims?.email).toBe('alice@example.com')
    expect(claims?.email_verified).toBe(true)
    expect(tokens.refresh_token).toBeDefined()
    expect(tokens.expires_in).toBe(60)
    const unverified = await signIn('mallory-sub')
    expect(unverified.claims()?.email_verified).toBe(false)
  })

  it('keeps the protocol checks on: a wrong PKCE verifier, a missing PKCE challenge', async () => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: 's1',
    })
    const back = await followUpstreamLogin(url)
    expect(back.searchParams.get('iss')).toBe(upstream.issuer)
    await expect(
      client.authorizationCodeGrant(config, back, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
        expectedState: 's1',
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' })

    const noPkce = client.buildAuthorizationUrl(config, {
      redirect_uri: callback,
      scope: 'openid',
      state: 's2',
    })
    const refused = await followUpstreamLogin(noPkce)
    expect(refused.searchParams.get('error')).toBe('invalid_request')
    expect(refused.searchParams.get('state')).toBe('s2')
  })

  it('refuses a redirect URI it was not given', async () => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: 'http://127.0.0.1:9/elsewhere',
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    })
    await expect(followUpstreamLogin(url)).rejects.toThrow(/redirect_uri did not match/)
  })

  it('ends the interaction with access_denied when told to', async () => {
    upstream.denyNext()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: 's3',
    })
    const back = await followUpstreamLogin(url)
    expect(back.searchParams.get('error')).toBe('access_denied')
    expect(back.searchParams.get('iss')).toBe(upstream.issuer)
  })

  it('accepts client_secret_basic as well as client_secret_post', async () => {
    const basic = await client.discovery(
      new URL(upstream.issuer),
      upstream.clientId,
      undefined,
      client.ClientSecretBasic(upstream.clientSecret),
      { execute: [client.allowInsecureRequests] },
    )
    const tokens = await signIn('bob-sub', basic)
    expect(tokens.claims()?.sub).toBe('bob-sub')
    const wrong = await client.discovery(
      new URL(upstream.issuer),
      upstream.clientId,
      undefined,
      client.ClientSecretBasic('not-the-secret'),
      { execute: [client.allowInsecureRequests] },
    )
    await expect(signIn('bob-sub', wrong)).rejects.toMatchObject({ status: 401 })
  })

  it('counts refreshes, rotates refresh tokens, and answers invalid_grant once the grant is revoked', async () => {
    const tokens = await signIn('alice-sub')
    const before = { ...upstream.counts }
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
    expect(upstream.counts.refresh).toBe(before.refresh + 1)
    expect(upstream.counts.token).toBe(before.token + 1)
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token)
    expect(refreshed.access_token).not.toBe(tokens.access_token)

    expect(upstream.revokeGrants('alice-sub')).toBeGreaterThan(0)
    await expect(
      client.refreshTokenGrant(config, refreshed.refresh_token as string),
    ).rejects.toMatchObject({
      error: 'invalid_grant',
    })
    expect(upstream.counts.refreshRejected).toBe(before.refreshRejected + 1)
    expect((await upstream.introspect(refreshed.access_token)).active).toBe(false)
  })

  it('revokes a refresh token at its RFC 7009 endpoint, counted, and says what the account still holds', async () => {
    upstream.revokeGrants('bob-sub')
    const tokens = await signIn('bob-sub')
    expect(upstream.live('bob-sub')).toEqual({ grants: 1, accessTokens: 1, refreshTokens: 1 })
    expect(upstream.tokenValues('bob-sub')).toEqual(
      expect.arrayContaining([tokens.access_token, tokens.refresh_token]),
    )
    const before = upstream.counts.revocation
    await client.tokenRevocation(config, tokens.refresh_token as string)
    expect(upstream.counts.revocation).toBe(before + 1)
    expect(upstream.live('bob-sub').refreshTokens).toBe(0)
    await expect(
      client.refreshTokenGrant(config, tokens.refresh_token as string),
    ).rejects.toMatchObject({
      error: 'invalid_grant',
    })
  })

  it('detects a rotated refresh token used twice at once: one refresh wins, the grant is revoked', async () => {
    // What a refresh race in Deputy would cause at a real provider: the connection breaks.
    const tokens = await signIn('alice-sub')
    const rt = tokens.refresh_token as string
    const results = await Promise.allSettled([
      client.refreshTokenGrant(config, rt),
      client.refreshTokenGrant(config, rt),
    ])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({
      reason: { error: 'invalid_grant' },
    })
    const winner = results.find((r) => r.status === 'fulfilled')?.value
    await expect(
      client.refreshTokenGrant(config, winner?.refresh_token as string),
    ).rejects.toMatchObject({
      error: 'invalid_grant',
    })
  })

  it('narrows the scope at a refresh when asked, and refuses a wider one', async () => {
    const tokens = await signIn('bob-sub')
    const narrower = await client.refreshTokenGrant(config, tokens.refresh_token as string, {
      scope: 'openid email',
    })
    expect(narrower.scope?.split(' ').sort()).toEqual(['email', 'openid'])
    expect((await upstream.introspect(narrower.access_token)).scope).toBe(narrower.scope)
    await expect(
      client.refreshTokenGrant(config, narrower.refresh_token as string, {
        scope: 'openid email profile phone',
      }),
    ).rejects.toMatchObject({ error: 'invalid_scope' })
  })

  it('fails token requests transiently with 503 when told to, then serves them', async () => {
    const tokens = await signIn('bob-sub')
    upstream.failTokenRequests(2)
    const before = { ...upstream.counts }
    for (let i = 0; i < 2; i++) {
      const response = await fetch(config.serverMetadata().token_endpoint as string, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: tokens.refresh_token as string,
          client_id: upstream.clientId,
          client_secret: upstream.clientSecret,
        }),
      })
      expect(response.status).toBe(503)
      expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' })
    }
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
    expect(refreshed.access_token).toBeDefined()
    expect(upstream.counts).toMatchObject({
      token: before.token + 3,
      injected: before.injected + 2,
      refresh: before.refresh + 1,
    })
  })

  it('stand-in API: accepts a fresh token, refuses an expired or made-up one with invalid_token', async () => {
    const tokens = await signIn('alice-sub')
    const call = (token: string, path = '/me') =>
      fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const me = await call(tokens.access_token)
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: 'alice-sub', client_id: upstream.clientId })
    expect((await call(tokens.access_token, '/repos')).status).toBe(200)

    const bogus = await call('made-up')
    expect(bogus.status).toBe(401)
    expect(bogus.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)

    upstream.expireAccessTokens()
    const expired = await call(tokens.access_token)
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)

    const none = await fetch(`${api.url}/me`)
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).not.toMatch(/error=/)
    expect(api.counts).toMatchObject({ calls: 5, accepted: 2, refused: 3 })
  })
})

describe('short access-token lifetime', () => {
  it('expires access tokens by the clock after accessTokenTtl seconds', async () => {
    const upstream = await startUpstreamProvider({ accessTokenTtl: 1, rotateRefreshTokens: false })
    const api = await startUpstreamApi({ provider: upstream })
    try {
      const config = await client.discovery(
        new URL(upstream.issuer),
        upstream.clientId,
        undefined,
        client.ClientSecretPost(upstream.clientSecret),
        { execute: [client.allowInsecureRequests] },
      )
      const verifier = client.randomPKCECodeVerifier()
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: callback,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: 'st',
      })
      const tokens = await client.authorizationCodeGrant(config, await followUpstreamLogin(url), {
        pkceCodeVerifier: verifier,
        expectedState: 'st',
      })
      expect(tokens.expires_in).toBe(1)
      const call = (token: string) =>
        fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${token}` } })
      // Waits until the provider's clock has passed the token's expiry (a whole second).
      const exp = (await upstream.introspect(tokens.access_token)).exp as number
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50))
      expect((await call(tokens.access_token)).status).toBe(401)
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
      expect(refreshed.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token)
      expect((await call(refreshed.access_token)).status).toBe(200)
    } finally {
      await api.close()
      await upstream.close()
    }
  })
})

describe('fake GitHub', () => {
  it("runs GitHub's web flow with PKCE, /user and /user/emails, and deletes the grant", async () => {
    const gh = await startFakeGitHub()
    try {
      const verifier = client.randomPKCECodeVerifier()
      const authorize = new URL(gh.endpoints.authorization_endpoint)
      authorize.search = new URLSearchParams({
        client_id: gh.clientId,
        redirect_uri: callback,
        scope: 'read:user user:email',
        state: 'gh-state',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString()
      const back = await followGitHubLogin(authorize)
      expect(back.searchParams.get('state')).toBe('gh-state')
      expect(gh.providerInput().endpoints).toEqual(gh.endpoints)
      const code = back.searchParams.get('code') as string
      const exchange = (fields: Record<string, string>, accept = 'application/json') =>
        fetch(gh.endpoints.token_endpoint, {
          method: 'POST',
          headers: { accept, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            client_id: gh.clientId,
            client_secret: gh.clientSecret,
            ...fields,
          }),
        })
      const badVerifier = await exchange({ code, redirect_uri: callback, code_verifier: 'wrong' })
      expect(badVerifier.status).toBe(200)
      expect(await badVerifier.json()).toMatchObject({ error: 'bad_verification_code' })

      const again = await followGitHubLogin(authorize)
      const token = (await (
        await exchange({
          code: again.searchParams.get('code') as string,
          redirect_uri: callback,
          code_verifier: verifier,
        })
      ).json()) as { access_token: string; token_type: string; scope: string }
      expect(token).toMatchObject({ token_type: 'bearer', scope: 'read:user,user:email' })
      expect(token.access_token).toMatch(/^gho_/)

      const api = (path: string, t = token.access_token) =>
        fetch(`${gh.url}${path}`, {
          headers: { authorization: `Bearer ${t}`, accept: 'application/vnd.github+json' },
        })
      expect(await (await api('/user')).json()).toMatchObject({
        id: 583231,
        login: 'octocat',
        email: null,
      })
      expect(await (await api('/user/emails')).json()).toContainEqual({
        email: 'octocat@example.com',
        primary: true,
        verified: true,
        visibility: 'private',
      })
      const bad = await api('/user', 'gho_nope')
      expect(bad.status).toBe(401)
      expect(await bad.json()).toMatchObject({ message: 'Bad credentials' })

      const revoke = (secret: string) =>
        fetch(gh.endpoints.revocation_endpoint, {
          method: 'DELETE',
          headers: {
            authorization: `Basic ${Buffer.from(`${gh.clientId}:${secret}`).toString('base64')}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ access_token: token.access_token }),
        })
      expect((await revoke('wrong')).status).toBe(404)
      expect((await revoke(gh.clientSecret)).status).toBe(204)
      expect(gh.counts.revocation).toBe(1)
      expect((await api('/user')).status).toBe(401)

      gh.denyNext()
      expect((await followGitHubLogin(authorize)).searchParams.get('error')).toBe('access_denied')
      const form = await exchange({ code: 'nope' }, '*/*')
      expect(new URLSearchParams(await form.text()).get('error')).toBe('bad_verification_code')
    } finally {
      await gh.close()
    }
  })

  it('issues expiring user tokens with rotated refresh tokens when asked (a GitHub App)', async () => {
    const gh = await startFakeGitHub({ expiringTokens: { accessTokenTtl: 3600 } })
    try {
      gh.loginAs = 'hubot'
      const back = await followGitHubLogin(
        `${gh.endpoints.authorization_endpoint}?client_id=${gh.clientId}&redirect_uri=${encodeURIComponent(callback)}&state=x`,
      )
      const post = async (fields: Record<string, string>) =>
        (await (
          await fetch(gh.endpoints.token_endpoint, {
            method: 'POST',
            headers: {
              accept: 'application/json',
              'content-type': 'application/x-www-form-urlencoded',
            },
            body: new URLSearchParams({
              client_id: gh.clientId,
              client_secret: gh.clientSecret,
              ...fields,
            }),
          })
        ).json()) as Record<string, string>
      const first = await post({ code: back.searchParams.get('code') as string })
      expect(first.access_token).toMatch(/^ghu_/)
      expect(first.refresh_token).toMatch(/^ghr_/)
      gh.expireAccessTokens()
      expect(gh.tokenActive(first.access_token as string)).toBe(false)
      const second = await post({
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token as string,
      })
      expect(gh.tokenActive(second.access_token as string)).toBe(true)
      expect(gh.counts.refresh).toBe(1)
      const reused = await post({
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token as string,
      })
      expect(reused.error).toBe('bad_refresh_token')
      gh.failTokenRequests(1)
      const failed = await fetch(gh.endpoints.token_endpoint, { method: 'POST', body: '' })
      expect(failed.status).toBe(503)
    } finally {
      await gh.close()
    }
  })
})
