import { exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Client } from '../../src/oauth/clients.js'
import {
  ADMIN,
  basic,
  createWorld,
  expectOAuthJson,
  issueCode,
  postForm,
  REDIRECT,
  RESOURCE,
  redeem,
  VERIFIER,
  type World,
} from './token-helpers.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const CC = { grant_type: 'client_credentials', resource: RESOURCE, scope: 'tools:read' }

/**
 * RFC 6749 §5.2: a client that tried HTTP Basic gets 401 with a Basic challenge; any other failed
 * client authentication gets 400 and no challenge (a Basic one would invite Basic).
 */
async function expectInvalidClient(
  response: Response,
  tried: 'basic' | 'other' = 'other',
): Promise<void> {
  expectOAuthJson(response)
  expect(((await response.json()) as { error: string }).error).toBe('invalid_client')
  if (tried === 'basic') {
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm="deputy"/)
  } else {
    expect(response.status).toBe(400)
    expect(response.headers.get('www-authenticate')).toBeNull()
  }
}

describe('client authentication at the token endpoint (RFC 6749 §2.3)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  const agentBasic = () => basic(world.agent.client.clientId, world.agent.secret)

  it('accepts client_secret_basic for a client registered with it', async () => {
    expect((await postForm(world, '/token', CC, agentBasic())).status).toBe(200)
  })

  it('refuses a request with no client authentication', async () => {
    await expectInvalidClient(await postForm(world, '/token', CC))
  })

  it('refuses a wrong or empty secret', async () => {
    await expectInvalidClient(
      await postForm(world, '/token', CC, basic(world.agent.client.clientId, 'wrong')),
      'basic',
    )
    await expectInvalidClient(
      await postForm(world, '/token', CC, basic(world.agent.client.clientId, '')),
      'basic',
    )
  })

  it('refuses an unknown client', async () => {
    await expectInvalidClient(
      await postForm(world, '/token', CC, basic('client_nobody', 'x')),
      'basic',
    )
  })

  it('refuses two methods at once, even when both are right', async () => {
    const response = await postForm(
      world,
      '/token',
      { ...CC, client_id: world.agent.client.clientId, client_secret: world.agent.secret },
      agentBasic(),
    )
    await expectInvalidClient(response, 'basic')
  })

  it('refuses a method the client did not register (client_secret_post for a basic client)', async () => {
    const response = await postForm(world, '/token', {
      ...CC,
      client_id: world.agent.client.clientId,
      client_secret: world.agent.secret,
    })
    await expectInvalidClient(response)
  })

  it('accepts client_secret_post for a client registered with it', async () => {
    const { client, clientSecret } = await world.deputy.deps.clients.register(
      {
        name: 'Poster',
        tokenEndpointAuthMethod: 'client_secret_post',
        allowedScopes: ['tools:read'],
      },
      ADMIN,
    )
    const response = await postForm(world, '/token', {
      ...CC,
      client_id: client.clientId,
      client_secret: clientSecret as string,
    })
    expect(response.status).toBe(200)
  })

  it('refuses a confidential client presenting only its client_id (method none)', async () => {
    await expectInvalidClient(
      await postForm(world, '/token', { ...CC, client_id: world.agent.client.clientId }),
    )
  })

  it('refuses a body client_id naming another client than the Basic credentials', async () => {
    const response = await postForm(
      world,
      '/token',
      { ...CC, client_id: world.introspector.client.clientId },
      agentBasic(),
    )
    await expectInvalidClient(response, 'basic')
  })

  it('refuses a disabled client', async () => {
    await world.deputy.deps.clients.disable(world.agent.client.clientId, ADMIN)
    await expectInvalidClient(await postForm(world, '/token', CC, agentBasic()), 'basic')
  })

  it('refuses a public client presenting a secret it does not have', async () => {
    const { code } = await issueCode(world)
    const response = await postForm(
      world,
      '/token',
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER },
      basic(world.app.clientId, 'guess'),
    )
    await expectInvalidClient(response, 'basic')
    // The code was not touched: the client authenticates before any grant is looked at.
    expect((await redeem(world, code)).status).toBe(200)
  })
})

describe('private_key_jwt (RFC 7523 §2.2, §3)', () => {
  let world: World
  let client: Client
  let privateKey: CryptoKey
  let publicJwk: JWK
  let now: number

  beforeEach(async () => {
    world = await createWorld()
    const pair = await generateKeyPair('ES256', { extractable: true })
    privateKey = pair.privateKey
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
    client = (
      await world.deputy.deps.clients.register(
        {
          name: 'Keyed agent',
          jwks: { keys: [publicJwk as Record<string, unknown>] },
          tokenEndpointAuthMethod: 'private_key_jwt',
          allowedScopes: ['tools:read'],
        },
        ADMIN,
      )
    ).client
    now = Math.floor(world.clock.now().getTime() / 1000)
  })
  afterEach(() => world.deputy.dispose())

  function assertion(
    overrides: { iss?: string; sub?: string; aud?: string; exp?: number; jti?: string } = {},
    key: CryptoKey = privateKey,
  ): Promise<string> {
    const jwt = new SignJWT({ jti: overrides.jti ?? crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(overrides.iss ?? client.clientId)
      .setSubject(overrides.sub ?? client.clientId)
      .setAudience(overrides.aud ?? world.deputy.config.issuer)
      .setIssuedAt(now)
      .setExpirationTime(overrides.exp ?? now + 60)
    return jwt.sign(key)
  }

  function send(jwt: string, extra: Record<string, string> = {}): Promise<Response> {
    return postForm(world, '/token', {
      ...CC,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: jwt,
      ...extra,
    })
  }

  it('accepts a valid assertion (aud = issuer or token endpoint) and issues a token to the agent', async () => {
    const response = await send(await assertion())
    expect(response.status).toBe(200)
    const body = (await response.json()) as { access_token: string }
    expect(body.access_token).toBeTruthy()
    const viaEndpoint = await send(
      await assertion({ aud: `${world.deputy.config.issuer}/token` }),
      {
        client_id: client.clientId,
      },
    )
    expect(viaEndpoint.status).toBe(200)
  })

  it('refuses a replayed assertion (same jti)', async () => {
    const jwt = await assertion({ jti: 'once' })
    expect((await send(jwt)).status).toBe(200)
    await expectInvalidClient(await send(jwt))
    // The same jti in a freshly signed assertion is a replay too.
    await expectInvalidClient(await send(await assertion({ jti: 'once' })))
  })

  it('refuses a wrong audience', async () => {
    await expectInvalidClient(await send(await assertion({ aud: 'http://127.0.0.1:1/elsewhere' })))
  })

  it('refuses iss different from sub', async () => {
    await expectInvalidClient(await send(await assertion({ iss: world.agent.client.clientId })))
  })

  it('refuses an expired assertion and one that is valid for too long', async () => {
    await expectInvalidClient(await send(await assertion({ exp: now - 120 })))
    await expectInvalidClient(await send(await assertion({ exp: now + 3600 })))
  })

  it('refuses an assertion without jti', async () => {
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(world.deputy.config.issuer)
      .setExpirationTime(now + 60)
      .sign(privateKey)
    await expectInvalidClient(await send(jwt))
  })

  it('refuses alg none', async () => {
    const jwt = new UnsecuredJWT({ jti: 'n1' })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(world.deputy.config.issuer)
      .setExpirationTime(now + 60)
      .encode()
    await expectInvalidClient(await send(jwt))
  })

  it('refuses HS256, even keyed with the client’s public key', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(publicJwk))
    const jwt = await new SignJWT({ jti: 'h1' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(world.deputy.config.issuer)
      .setExpirationTime(now + 60)
      .sign(secret)
    await expectInvalidClient(await send(jwt))
  })

  it('refuses an assertion signed by another key', async () => {
    const other = await generateKeyPair('ES256')
    await expectInvalidClient(await send(await assertion({}, other.privateKey)))
  })

  it('refuses a wrong assertion type and a body client_id that is not the assertion’s', async () => {
    await expectInvalidClient(
      await send(await assertion(), { client_assertion_type: 'urn:example:other' }),
    )
    await expectInvalidClient(
      await send(await assertion(), { client_id: world.agent.client.clientId }),
    )
  })

  it('refuses an assertion from a client registered for client_secret_basic', async () => {
    const jwt = await assertion({
      iss: world.agent.client.clientId,
      sub: world.agent.client.clientId,
    })
    await expectInvalidClient(await send(jwt))
  })
})
