import { decodeJwt } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ADMIN,
  basic,
  createWorld,
  expectOAuthJson,
  introspect,
  postForm,
  RESOURCE,
  refresh,
  startGrant,
  type Tokens,
  type World,
} from './token-helpers.js'

describe('token introspection (RFC 7662)', () => {
  let world: World
  let tokens: Tokens & { grantId: string }
  let grantId: string
  beforeEach(async () => {
    world = await createWorld()
    tokens = await startGrant(world)
    grantId = tokens.grantId
  })
  afterEach(() => world.deputy.dispose())

  it('describes an active access token to an authorised resource server', async () => {
    const response = await postForm(
      world,
      '/introspect',
      { token: tokens.access_token },
      basic(world.introspector.client.clientId, world.introspector.secret),
    )
    expect(response.status).toBe(200)
    expectOAuthJson(response)
    const body = (await response.json()) as Record<string, unknown>
    expect(body).toMatchObject({
      active: true,
      scope: 'email openid profile tools:read tools:write',
      client_id: world.app.clientId,
      sub: world.alice.id,
      aud: RESOURCE,
      iss: world.deputy.config.issuer,
      token_type: 'Bearer',
    })
    expect(typeof body.exp).toBe('number')
    expect(typeof body.iat).toBe('number')
  })

  // Issue 9 §9: /introspect returned none of the person's claims the JWT carries, so a resource
  // server introspecting (e.g. @deputy/mcp's introspectionVerifier) saw no roles or permissions.
  it("returns the person's claims the access token carries, as a resource server verifying it would see", async () => {
    const body = await introspect(world, tokens.access_token)
    const jwt = decodeJwt(tokens.access_token)
    expect(body).toMatchObject({
      name: 'Alice Example',
      email: 'alice@example.com',
      roles: ['shopper'],
      permissions: ['orders:create'],
      favorite_song: 'Bohemian Rhapsody',
    })
    for (const [claim, value] of Object.entries(jwt)) expect(body[claim], claim).toEqual(value)
  })

  it('describes a live refresh token, and not once it is rotated', async () => {
    expect(await introspect(world, tokens.refresh_token)).toMatchObject({
      active: true,
      client_id: world.app.clientId,
      sub: world.alice.id,
      aud: RESOURCE,
    })
    await refresh(world, tokens.refresh_token)
    expect(await introspect(world, tokens.refresh_token)).toEqual({ active: false })
  })

  it('reports an expired access token inactive', async () => {
    world.clock.advance(world.deputy.config.accessTokenTtlSeconds + 1)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
  })

  it('reports tokens of a revoked grant inactive', async () => {
    await world.deputy.deps.grants.revoke(grantId, 'revoked-by-user', ADMIN)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
  })

  it('reports tokens of a disabled client inactive', async () => {
    await world.deputy.deps.clients.disable(world.app.clientId, ADMIN)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
  })

  it('reports a client_credentials token of a deleted agent inactive', async () => {
    const issued = (await (
      await postForm(
        world,
        '/token',
        { grant_type: 'client_credentials', resource: RESOURCE },
        basic(world.agent.client.clientId, world.agent.secret),
      )
    ).json()) as Tokens
    expect((await introspect(world, issued.access_token)).active).toBe(true)
    await world.deputy.deps.clients.delete(world.agent.client.clientId, ADMIN)
    expect(await introspect(world, issued.access_token)).toEqual({ active: false })
  })

  it('reports tokens of a disabled person inactive', async () => {
    await world.deputy.deps.users.setStatus('alice@example.com', 'disabled', ADMIN)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
  })

  it('does not take an ID token, a garbage string or a tampered token for an access token', async () => {
    expect(await introspect(world, tokens.id_token)).toEqual({ active: false })
    expect(await introspect(world, 'garbage')).toEqual({ active: false })
    const [h, p, s] = tokens.access_token.split('.') as [string, string, string]
    const tampered = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`
    expect(await introspect(world, tampered)).toEqual({ active: false })
  })

  it('lets an ordinary confidential client introspect only its own tokens', async () => {
    const agent = basic(world.agent.client.clientId, world.agent.secret)
    const own = (await (
      await postForm(
        world,
        '/token',
        { grant_type: 'client_credentials', resource: RESOURCE },
        agent,
      )
    ).json()) as Tokens
    const mine = await postForm(world, '/introspect', { token: own.access_token }, agent)
    expect(((await mine.json()) as { active: boolean }).active).toBe(true)
    const theirs = await postForm(world, '/introspect', { token: tokens.access_token }, agent)
    expect(await theirs.json()).toEqual({ active: false })
  })

  it('refuses a public client and an unauthenticated caller with invalid_client', async () => {
    const publicClient = await postForm(world, '/introspect', {
      token: tokens.access_token,
      client_id: world.app.clientId,
    })
    expect(publicClient.status).toBe(400)
    const anonymous = await postForm(world, '/introspect', { token: tokens.access_token })
    expect(anonymous.status).toBe(400)
    // RFC 6749 §5.2: no Basic challenge for a client that did not try Basic.
    expect(anonymous.headers.get('www-authenticate')).toBeNull()
    expect(((await anonymous.json()) as { error: string }).error).toBe('invalid_client')
  })

  it('refuses a JSON body and a request without a token with invalid_request', async () => {
    const json = await world.deputy.app.request('/introspect', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...basic(world.introspector.client.clientId, world.introspector.secret),
      },
      body: JSON.stringify({ token: tokens.access_token }),
    })
    expect(json.status).toBe(400)
    const missing = await postForm(
      world,
      '/introspect',
      {},
      basic(world.introspector.client.clientId, world.introspector.secret),
    )
    expect(((await missing.json()) as { error: string }).error).toBe('invalid_request')
  })
})
