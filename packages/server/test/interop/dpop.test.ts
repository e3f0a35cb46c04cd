import { jwtVerifier, type ProtectedMcpServer, protectMcpServer } from '@deputy/mcp'
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listenOn } from '../gateway/helpers.js'
import { signInAndConsent } from '../helpers/sign-in.js'
import { type InteropDeputy, PERSON, startInteropDeputy } from './fixture.js'

// Issue 13 §3: DPoP (RFC 9449) with openid-client's DPoP handle as the independent client: code
// flow, refresh and a protected MCP request through the kit, all bound to the handle's key; and
// the token endpoint's refusals (§5, §8) on the wire.

const ACTOR = { type: 'system', id: 'dpop-test' } as const

let env: InteropDeputy
let kitServer: { url: string; close(): Promise<void> }
let resource: string

beforeAll(async () => {
  env = await startInteropDeputy({ webClientAuth: 'client_secret_basic' })
  let kit: ProtectedMcpServer | undefined
  kitServer = await listenOn((request) => (kit as ProtectedMcpServer).fetch(request))
  resource = `${kitServer.url}/mcp`
  kit = protectMcpServer({
    resource,
    authorizationServers: [env.issuer],
    verifier: jwtVerifier({
      issuer: env.issuer,
      audience: resource,
      jwksUri: `${env.issuer}/jwks`,
    }),
    server: { name: 'dpop-kit', version: '1.0.0' },
  })
  await env.deputy.deps.resources.put(
    { uri: resource, name: 'DPoP kit', scopes: { 'kit:use': 'Use the kit' } },
    ACTOR,
  )
})
afterAll(async () => {
  await kitServer?.close()
  await env?.close()
})

async function publicConfig(): Promise<client.Configuration> {
  return client.discovery(
    new URL(env.issuer),
    env.publicClient.clientId,
    undefined,
    client.None(),
    {
      execute: [client.allowInsecureRequests],
    },
  )
}

/** Code + PKCE through sign-in and consent, redeemed with the DPoP handle. */
async function codeFlow(config: client.Configuration, dpop: client.DPoPHandle) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: env.publicClient.redirectUri,
    scope: 'kit:use',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    resource,
  })
  const browser = await signInAndConsent(url, env.publicClient.redirectUri, PERSON, 'allow')
  return client.authorizationCodeGrant(
    config,
    browser.callback,
    { pkceCodeVerifier, expectedState: state },
    { resource },
    { DPoP: dpop },
  )
}

async function errorOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err instanceof client.ResponseBodyError) return err.error
  throw new Error(`expected an OAuth error, got ${String(err)}`)
}

describe('DPoP with openid-client (RFC 9449, issue 13 §3)', () => {
  it('§5.1: the metadata names the proof algorithms', async () => {
    const config = await publicConfig()
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toEqual(
      expect.arrayContaining(['ES256', 'EdDSA', 'RS256', 'PS256']),
    )
    expect(config.serverMetadata().dpop_signing_alg_values_supported).not.toContain('HS256')
  })

  it('code flow, refresh and a protected MCP request, all bound to the key; another key or none is refused', async () => {
    const config = await publicConfig()
    const keyPair = await client.randomDPoPKeyPair('ES256')
    const dpop = client.getDPoPHandle(config, keyPair)
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey))

    const tokens = await codeFlow(config, dpop)
    expect(tokens.token_type.toLowerCase()).toBe('dpop')
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt })
    const refreshToken = tokens.refresh_token as string

    // The kit checks the proof the library makes for this request (ath, htm, htu, key).
    const mcp = await client.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(resource),
      'POST',
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'openid-client', version: '6' },
        },
      }),
      new Headers({
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      }),
      { DPoP: dpop },
    )
    expect(mcp.status).toBe(200)

    // The same token as Bearer is refused: it is bound (§7.2).
    const asBearer = await fetch(resource, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: '{}',
    })
    expect(asBearer.status).toBe(401)
    expect(((await asBearer.json()) as { error: string }).error).toBe('invalid_token')

    // Introspection shows the binding of the access token and of the refresh token's family.
    const rs = await client.discovery(
      new URL(env.issuer),
      env.resourceServer.clientId,
      undefined,
      client.ClientSecretBasic(env.resourceServer.clientSecret),
      { execute: [client.allowInsecureRequests] },
    )
    const introspected = await client.tokenIntrospection(rs, tokens.access_token)
    expect(introspected).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } })
    expect(await client.tokenIntrospection(rs, refreshToken)).toMatchObject({
      active: true,
      cnf: { jkt },
    })

    // A public client's refresh token is bound: another key, or no proof, is refused …
    const otherHandle = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
    expect(
      await errorOf(client.refreshTokenGrant(config, refreshToken, {}, { DPoP: otherHandle })),
    ).toBe('invalid_grant')
    expect(await errorOf(client.refreshTokenGrant(config, refreshToken))).toBe('invalid_grant')
    // … and leaves the family as it was: with the key it still refreshes, bound again.
    const refreshed = await client.refreshTokenGrant(config, refreshToken, {}, { DPoP: dpop })
    expect(refreshed.token_type.toLowerCase()).toBe('dpop')
    expect(decodeJwt(refreshed.access_token).cnf).toEqual({ jkt })
    const again = await client.refreshTokenGrant(
      config,
      refreshed.refresh_token as string,
      {},
      {
        DPoP: dpop,
      },
    )
    expect(again.token_type.toLowerCase()).toBe('dpop')
  })
})

describe('the token endpoint’s DPoP refusals on the wire (RFC 9449 §5, §8)', () => {
  const tokenUrl = () => `${env.issuer}/token`
  const basic = () =>
    `Basic ${Buffer.from(`${env.secretAgent.clientId}:${env.secretAgent.clientSecret}`).toString('base64')}`

  async function request(proof: string | undefined): Promise<Response> {
    return fetch(tokenUrl(), {
      method: 'POST',
      headers: {
        authorization: basic(),
        'content-type': 'application/x-www-form-urlencoded',
        ...(proof !== undefined && { dpop: proof }),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'shop:order' }),
    })
  }

  let keys: Awaited<ReturnType<typeof generateKeyPair>>
  beforeAll(async () => {
    keys = await generateKeyPair('ES256', { extractable: true })
  })

  async function proof(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
    return new SignJWT({
      jti: crypto.randomUUID(),
      iat: Math.floor(Date.now() / 1000),
      htm: 'POST',
      htu: tokenUrl(),
      ...claims,
    })
      .setProtectedHeader({
        alg: 'ES256',
        typ: 'dpop+jwt',
        jwk: await exportJWK(keys.publicKey),
        ...header,
      })
      .sign(keys.privateKey)
  }

  async function nonce(): Promise<string> {
    const first = await request(await proof())
    expect(first.status).toBe(400)
    expect(((await first.json()) as { error: string }).error).toBe('use_dpop_nonce')
    const value = first.headers.get('dpop-nonce')
    expect(value).toBeTruthy()
    return value as string
  }

  it('§8: a proof without the server nonce gets use_dpop_nonce and a DPoP-Nonce; with it, a DPoP token', async () => {
    const given = await nonce()
    const response = await request(await proof({ nonce: given }))
    expect(response.status).toBe(200)
    const body = (await response.json()) as { token_type: string; access_token: string }
    expect(body.token_type).toBe('DPoP')
    expect(decodeJwt(body.access_token).cnf).toEqual({
      jkt: await calculateJwkThumbprint(await exportJWK(keys.publicKey)),
    })
    expect(response.headers.get('dpop-nonce')).toBeTruthy()
    // A nonce Deputy never gave out is no nonce.
    const forged = await request(await proof({ nonce: 'v1.made.up.nonce.value.x' }))
    expect(((await forged.json()) as { error: string }).error).toBe('use_dpop_nonce')
  })

  it('without a DPoP header the token stays a Bearer token', async () => {
    const response = await request(undefined)
    expect(((await response.json()) as { token_type: string }).token_type).toBe('Bearer')
  })

  it('refuses wrong htm, wrong htu, stale iat, a replayed jti, bad typ and a private jwk with invalid_dpop_proof', async () => {
    const given = await nonce()
    const privateJwk = await exportJWK(keys.privateKey)
    const bad = [
      await proof({ nonce: given, htm: 'GET' }),
      await proof({ nonce: given, htu: `${env.issuer}/other` }),
      await proof({ nonce: given, iat: Math.floor(Date.now() / 1000) - 3600 }),
      await proof({ nonce: given }, { typ: 'JWT' }),
      await proof({ nonce: given }, { jwk: privateJwk }),
    ]
    for (const one of bad) {
      const response = await request(one)
      expect(response.status).toBe(400)
      expect(((await response.json()) as { error: string }).error).toBe('invalid_dpop_proof')
    }
    const once = await proof({ nonce: given })
    expect((await request(once)).status).toBe(200)
    const replayed = await request(once)
    expect(((await replayed.json()) as { error: string }).error).toBe('invalid_dpop_proof')
  })
})
