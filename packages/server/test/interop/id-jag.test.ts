import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { signInAndConsent } from '../helpers/sign-in.js'
import { type InteropDeputy, PERSON, RESOURCE, startInteropDeputy } from './fixture.js'

// Issue 13 §2: enterprise-managed authorization (draft-ietf-oauth-identity-assertion-authz-grant,
// the MCP enterprise-managed-authorization extension) between two real Deputy instances on
// 127.0.0.1. The person signs in at the enterprise IdP (Deputy A) through a real code flow; the
// agent exchanges the ID token there for an ID-JAG naming the resource's authorization server
// (Deputy B), and B exchanges the ID-JAG (jwt-bearer, RFC 7523) for an access token for the person.
// openid-client makes both calls (genericGrantRequest), as the independent client.

const ACTOR: Actor = { type: 'system', id: 'id-jag-test' }
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag'
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
const REDIRECT = 'https://agent.example/callback'
const OTHER_AS = 'https://other-as.example'
const BOB = { email: 'bob@example.com', name: 'Bob', password: 'another-long-password-2' }

/** A clock a test moves forward, starting now. */
function movableClock() {
  let offset = 0
  return { now: () => new Date(Date.now() + offset), advance: (s: number) => (offset += s * 1000) }
}

async function oauthError(promise: Promise<unknown>): Promise<{ status: number; error: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err instanceof client.ResponseBodyError) return { status: err.status, error: err.error }
  throw new Error(`expected an OAuth error response, got ${String(err)}`)
}

describe('ID-JAG between two Deputy instances (issue 13 §2)', () => {
  let idp: InteropDeputy
  let ras: InteropDeputy
  const rasClock = movableClock()
  let agentAtIdp: { clientId: string; secret: string }
  let agentAtRas: { clientId: string; secret: string }
  let otherAtRas: { clientId: string; secret: string }
  let idpConfig: client.Configuration
  let rasConfig: client.Configuration
  let adaIdToken: string

  beforeAll(async () => {
    idp = await startInteropDeputy({ webClientAuth: 'client_secret_post' })
    ras = await startInteropDeputy({
      webClientAuth: 'client_secret_post',
      // B fetches A's JWKS over http on loopback: the development allowance of the guard.
      config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
      clock: rasClock,
    })
    const register = async (env: InteropDeputy, name: string, grantTypes: string[]) => {
      const created = await env.deputy.deps.clients.register(
        {
          name,
          redirectUris: grantTypes.includes('authorization_code') ? [REDIRECT] : [],
          grantTypes: grantTypes as never,
          tokenEndpointAuthMethod: 'client_secret_basic',
        },
        ACTOR,
      )
      return { clientId: created.client.clientId, secret: created.clientSecret as string }
    }
    agentAtIdp = await register(idp, 'Enterprise agent', ['authorization_code', TOKEN_EXCHANGE])
    agentAtRas = await register(ras, 'Enterprise agent', [JWT_BEARER])
    otherAtRas = await register(ras, 'Another agent', [JWT_BEARER])
    await idp.deputy.deps.users.create({ ...BOB, roles: [] }, ACTOR)

    // At the IdP: B is an authorization server the agent may get ID-JAGs for, under its id there;
    // a second one exists that the agent is mapped to as well (for the wrong-audience case).
    const idpTrust = idp.deputy.deps.trustedIssuers
    await idpTrust.add({ name: 'shop-as', kind: 'resource-as', issuer: ras.issuer }, ACTOR)
    await idpTrust.map(
      'shop-as',
      { client: agentAtIdp.clientId, claims: { client_id: agentAtRas.clientId } },
      ACTOR,
    )
    await idpTrust.add({ name: 'other-as', kind: 'resource-as', issuer: OTHER_AS }, ACTOR)
    await idpTrust.map(
      'other-as',
      { client: agentAtIdp.clientId, claims: { client_id: agentAtRas.clientId } },
      ACTOR,
    )
    // At B: A is a trusted enterprise IdP whose email claim names B's people.
    await ras.deputy.deps.trustedIssuers.add(
      {
        name: 'acme-idp',
        kind: 'enterprise-idp',
        issuer: idp.issuer,
        jwksUri: `${idp.issuer}/jwks`,
        matchEmail: true,
      },
      ACTOR,
    )

    const configure = async (env: InteropDeputy, agent: { clientId: string; secret: string }) => {
      const config = await client.discovery(
        new URL(env.issuer),
        agent.clientId,
        { redirect_uris: [REDIRECT] },
        client.ClientSecretBasic(agent.secret),
        { execute: [client.allowInsecureRequests] },
      )
      client.enableNonRepudiationChecks(config)
      return config
    }
    idpConfig = await configure(idp, agentAtIdp)
    rasConfig = await configure(ras, agentAtRas)
    adaIdToken = await signIn(PERSON)
  })

  afterAll(async () => {
    await idp?.close()
    await ras?.close()
  })

  /** The person signs in at the IdP through a real code flow; the agent keeps the ID token. */
  async function signIn(person: { email: string; password: string }): Promise<string> {
    const pkceCodeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(idpConfig, {
      redirect_uri: REDIRECT,
      scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      resource: RESOURCE.uri,
    })
    const browser = await signInAndConsent(url, REDIRECT, person)
    const tokens = await client.authorizationCodeGrant(
      idpConfig,
      browser.callback,
      { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
      { resource: RESOURCE.uri },
    )
    return tokens.id_token as string
  }

  function requestIdJag(params: Record<string, string> = {}, config = idpConfig) {
    return client.genericGrantRequest(config, TOKEN_EXCHANGE, {
      requested_token_type: ID_JAG,
      subject_token: adaIdToken,
      subject_token_type: ID_TOKEN,
      audience: ras.issuer,
      resource: RESOURCE.uri,
      scope: 'shop:order shop:read',
      ...params,
    })
  }

  const redeem = (assertion: string, params: Record<string, string> = {}, config = rasConfig) =>
    client.genericGrantRequest(config, JWT_BEARER, { assertion, ...params })

  it('both advertise it: the resource AS the id-jag grant profile and jwt-bearer, the IdP the id-jag token type', () => {
    const metadata = rasConfig.serverMetadata()
    expect(metadata.grant_types_supported).toContain(JWT_BEARER)
    expect(metadata.authorization_grant_profiles_supported).toEqual([
      'urn:ietf:params:oauth:grant-profile:id-jag',
    ])
    expect(idpConfig.serverMetadata().identity_chaining_requested_token_types_supported).toEqual([
      ID_JAG,
    ])
  })

  it('the IdP issues an ID-JAG for the resource AS; the resource AS exchanges it for an access token for the person', async () => {
    const answer = await requestIdJag()
    expect(answer.issued_token_type).toBe(ID_JAG)
    expect(answer.token_type).toBe('n_a')
    expect(answer.refresh_token).toBeUndefined()
    const idJag = answer.access_token
    expect(decodeProtectedHeader(idJag).typ).toBe('oauth-id-jag+jwt')
    expect(decodeJwt(idJag)).toMatchObject({
      iss: idp.issuer,
      sub: idp.user.id,
      aud: ras.issuer,
      client_id: agentAtRas.clientId,
      resource: RESOURCE.uri,
      scope: 'shop:order shop:read',
      email: PERSON.email,
    })

    const tokens = await redeem(idJag, { scope: 'shop:order' })
    expect(tokens.refresh_token).toBeUndefined()
    expect(tokens.token_type).toBe('bearer')
    expect(decodeJwt(tokens.access_token)).toMatchObject({
      iss: ras.issuer,
      sub: ras.user.id,
      aud: RESOURCE.uri,
      client_id: agentAtRas.clientId,
      scope: 'shop:order',
      email: PERSON.email,
    })
    const audit = async (env: InteropDeputy, type: string) =>
      (
        await env.deputy.deps.db
          .selectFrom('audit_events')
          .select('data')
          .where('type', '=', type)
          .execute()
      ).map((r) => JSON.parse(r.data) as Record<string, unknown>)
    expect((await audit(idp, 'id-jag.issued')).at(-1)).toMatchObject({
      clientId: agentAtIdp.clientId,
      userId: idp.user.id,
      audience: ras.issuer,
      remoteClientId: agentAtRas.clientId,
      jti: decodeJwt(idJag).jti,
    })
    expect((await audit(ras, 'token.issued')).at(-1)).toMatchObject({
      grantType: JWT_BEARER,
      userId: ras.user.id,
      refreshToken: false,
      assertion: {
        trustedIssuer: 'acme-idp',
        issuer: idp.issuer,
        subject: idp.user.id,
        jti: decodeJwt(idJag).jti,
      },
    })

    // The ID-JAG is single use.
    expect(await oauthError(redeem(idJag))).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('the resource AS refuses an ID-JAG for another audience, for another client, or past its scope or resource', async () => {
    const forOther = (await requestIdJag({ audience: OTHER_AS })).access_token
    expect(await oauthError(redeem(forOther))).toEqual({ status: 400, error: 'invalid_grant' })
    const otherConfig = await client.discovery(
      new URL(ras.issuer),
      otherAtRas.clientId,
      {},
      client.ClientSecretBasic(otherAtRas.secret),
      { execute: [client.allowInsecureRequests] },
    )
    expect(await oauthError(redeem((await requestIdJag()).access_token, {}, otherConfig))).toEqual({
      status: 400,
      error: 'invalid_grant',
    })
    expect(
      await oauthError(
        redeem((await requestIdJag({ scope: 'shop:read' })).access_token, { scope: 'shop:order' }),
      ),
    ).toEqual({
      status: 400,
      error: 'invalid_scope',
    })
    expect(
      await oauthError(
        redeem((await requestIdJag()).access_token, { resource: 'https://calendar.example/mcp' }),
      ),
    ).toEqual({ status: 400, error: 'invalid_target' })
    const reasons = (
      await ras.deputy.deps.db
        .selectFrom('audit_events')
        .select('reason')
        .where('type', '=', 'token.refused')
        .execute()
    ).map((r) => r.reason)
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^assertion-ERR_JWT_CLAIM_VALIDATION_FAILED aud acme-idp$/),
        'id-jag-client-mismatch acme-idp',
        'id-jag-scope-not-allowed shop:order',
        'id-jag-resource-not-allowed https://calendar.example/mcp',
      ]),
    )
  })

  it('the resource AS refuses an expired ID-JAG, one from an IdP it does not trust, and one naming nobody it knows', async () => {
    const idJag = (await requestIdJag()).access_token
    rasClock.advance(300 + 31)
    try {
      expect(await oauthError(redeem(idJag))).toEqual({ status: 400, error: 'invalid_grant' })
    } finally {
      rasClock.advance(-(300 + 31))
    }
    // Signed by a key of an IdP B never heard of, shaped like a real ID-JAG.
    const { privateKey } = await generateKeyPair('ES256')
    const now = Math.floor(Date.now() / 1000)
    const rogue = await new SignJWT({
      sub: 'ada',
      aud: ras.issuer,
      client_id: agentAtRas.clientId,
      jti: crypto.randomUUID(),
      email: PERSON.email,
      scope: 'shop:order',
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: 'rogue' })
      .setIssuer('https://rogue-idp.example')
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey)
    expect(await oauthError(redeem(rogue))).toEqual({ status: 400, error: 'invalid_grant' })
    // A plain JWT from the trusted IdP (an ID token) is not an ID-JAG.
    expect(await oauthError(redeem(adaIdToken))).toEqual({ status: 400, error: 'invalid_grant' })
    // Bob exists at the IdP only: no account at B, so no token (B creates nobody).
    const bobIdToken = await signIn(BOB)
    const bobJag = (await requestIdJag({ subject_token: bobIdToken })).access_token
    const refused = await oauthError(redeem(bobJag))
    expect(refused).toEqual({ status: 400, error: 'invalid_grant' })
    const reasons = (
      await ras.deputy.deps.db
        .selectFrom('audit_events')
        .select('reason')
        .where('type', '=', 'token.refused')
        .execute()
    ).map((r) => r.reason)
    expect(reasons).toEqual(
      expect.arrayContaining([
        'assertion-ERR_JWT_EXPIRED exp acme-idp',
        'untrusted-issuer https://rogue-idp.example',
        'assertion-typ-not-id-jag',
        'id-jag-no-person acme-idp',
      ]),
    )
    // Unauthenticated, an ID-JAG is refused before anything else.
    const bare = await fetch(`${ras.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: JWT_BEARER,
        assertion: (await requestIdJag()).access_token,
      }),
    })
    expect(bare.status).toBe(400)
    expect(((await bare.json()) as { error: string }).error).toBe('invalid_client')
  })

  it('the IdP issues ID-JAGs only for trusted authorization servers, mapped clients and its own ID tokens', async () => {
    expect(await oauthError(requestIdJag({ audience: 'https://unknown-as.example' }))).toEqual({
      status: 400,
      error: 'invalid_target',
    })
    // A web client the operator did not map to B (it may not even use token exchange).
    const mapless = await idp.deputy.deps.clients.register(
      {
        name: 'Unmapped',
        grantTypes: [TOKEN_EXCHANGE],
        tokenEndpointAuthMethod: 'client_secret_basic',
      },
      ACTOR,
    )
    const maplessConfig = await client.discovery(
      new URL(idp.issuer),
      mapless.client.clientId,
      {},
      client.ClientSecretBasic(mapless.clientSecret as string),
      { execute: [client.allowInsecureRequests] },
    )
    expect(await oauthError(requestIdJag({}, maplessConfig))).toEqual({
      status: 400,
      error: 'unauthorized_client',
    })
    // An ID-JAG is not an ID token; neither is a token signed by a key the IdP never had.
    const accessToken = (await requestIdJag()).access_token
    expect(await oauthError(requestIdJag({ subject_token: accessToken }))).toEqual({
      status: 400,
      error: 'invalid_request',
    })
    const { publicKey: _p, privateKey } = await generateKeyPair('ES256')
    const foreign = await new SignJWT({ sub: idp.user.id, aud: agentAtIdp.clientId })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: (await exportJWK(_p)).x as string })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
    expect(await oauthError(requestIdJag({ subject_token: foreign }))).toEqual({
      status: 400,
      error: 'invalid_request',
    })
    expect(
      await oauthError(
        requestIdJag({ subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }),
      ),
    ).toEqual({
      status: 400,
      error: 'invalid_request',
    })
    expect(await oauthError(requestIdJag({ audience: '' }))).toEqual({
      status: 400,
      error: 'invalid_request',
    })
  })
})
