import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  auditOf,
  basic,
  createWorld,
  expectOAuthJson,
  OTHER_RESOURCE,
  postForm,
  RESOURCE,
  verifyWithJwks,
  type World,
} from './token-helpers.js'

describe('client_credentials grant (RFC 6749 §4.4, RFC 8707)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  const token = (params: Record<string, string>) =>
    postForm(
      world,
      '/token',
      { grant_type: 'client_credentials', ...params },
      basic(world.agent.client.clientId, world.agent.secret),
    )

  async function errorOf(response: Response): Promise<string> {
    expect(response.status).toBe(400)
    expectOAuthJson(response)
    return ((await response.json()) as { error: string }).error
  }

  it('issues an audience-bound token in the agent’s own name, echoing the scope, with no refresh token', async () => {
    const response = await token({ resource: RESOURCE, scope: 'tools:read' })
    expect(response.status).toBe(200)
    expectOAuthJson(response)
    const body = (await response.json()) as Record<string, unknown>
    expect(body.scope).toBe('tools:read')
    expect(body.token_type).toBe('Bearer')
    expect(body.refresh_token).toBeUndefined()
    expect(body.id_token).toBeUndefined()
    const { payload, header } = await verifyWithJwks(world, body.access_token as string, 'at+jwt')
    expect(header.typ).toBe('at+jwt')
    expect(payload).toMatchObject({
      sub: world.agent.client.clientId,
      client_id: world.agent.client.clientId,
      aud: RESOURCE,
      scope: 'tools:read',
    })
    // No person, so none of a person's claims.
    expect(payload.email).toBeUndefined()
    expect(payload.grant_id).toBeUndefined()
    const [issued] = await auditOf(world, 'token.issued')
    expect(issued?.data).toMatchObject({
      grantType: 'client_credentials',
      userId: null,
      resource: RESOURCE,
    })
  })

  it('uses the default resource when none is sent', async () => {
    const body = (await (await token({ scope: 'tools:read' })).json()) as { access_token: string }
    const { payload } = await verifyWithJwks(world, body.access_token, 'at+jwt')
    expect(payload.aud).toBe(RESOURCE)
  })

  it('grants the allowed scopes the resource offers when no scope is asked for', async () => {
    const body = (await (await token({ resource: OTHER_RESOURCE })).json()) as { scope: string }
    expect(body.scope).toBe('api:read')
  })

  it('refuses a scope not allowed for the client with invalid_scope, never dropping it silently', async () => {
    const { client, clientSecret } = await world.deputy.deps.clients.register(
      { name: 'Narrow agent', allowedScopes: ['tools:read'] },
      { type: 'system', id: 'test' },
    )
    const response = await postForm(
      world,
      '/token',
      { grant_type: 'client_credentials', resource: RESOURCE, scope: 'tools:read tools:write' },
      basic(client.clientId, clientSecret as string),
    )
    expect(await errorOf(response)).toBe('invalid_scope')
  })

  it('refuses a scope the resource does not offer, even if the client is allowed it elsewhere', async () => {
    expect(await errorOf(await token({ resource: RESOURCE, scope: 'api:read' }))).toBe(
      'invalid_scope',
    )
  })

  it('refuses an unknown resource, and more than one, with invalid_target', async () => {
    expect(await errorOf(await token({ resource: 'http://127.0.0.1:1/unknown' }))).toBe(
      'invalid_target',
    )
    const both = await postForm(
      world,
      '/token',
      `grant_type=client_credentials&resource=${encodeURIComponent(RESOURCE)}&resource=${encodeURIComponent(OTHER_RESOURCE)}`,
      basic(world.agent.client.clientId, world.agent.secret),
    )
    expect(await errorOf(both)).toBe('invalid_target')
  })

  it('refuses a malformed scope with invalid_scope', async () => {
    expect(await errorOf(await token({ resource: RESOURCE, scope: 'tools:read  "x"' }))).toBe(
      'invalid_scope',
    )
  })

  it('refuses a public client with unauthorized_client', async () => {
    const response = await postForm(world, '/token', {
      grant_type: 'client_credentials',
      client_id: world.app.clientId,
    })
    expect(await errorOf(response)).toBe('unauthorized_client')
  })
})
