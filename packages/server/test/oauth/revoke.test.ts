import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  auditOf,
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

describe('token revocation (RFC 7009)', () => {
  let world: World
  let tokens: Tokens & { grantId: string }
  let grantId: string
  beforeEach(async () => {
    world = await createWorld()
    tokens = await startGrant(world)
    grantId = tokens.grantId
  })
  afterEach(() => world.deputy.dispose())

  const revoke = (params: Record<string, string>, headers?: Record<string, string>) =>
    postForm(world, '/revoke', params, headers)

  it('revokes an access token: it introspects inactive while the grant goes on', async () => {
    const response = await revoke({ token: tokens.access_token, client_id: world.app.clientId })
    expect(response.status).toBe(200)
    expectOAuthJson(response)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
    expect((await refresh(world, tokens.refresh_token)).status).toBe(200)
    const [event] = await auditOf(world, 'token.revoked')
    expect(event?.data).toMatchObject({ tokenType: 'access_token', grantId })
  })

  it('revokes a refresh token together with its grant and the access tokens it produced', async () => {
    const response = await revoke({
      token: tokens.refresh_token,
      token_type_hint: 'refresh_token',
      client_id: world.app.clientId,
    })
    expect(response.status).toBe(200)
    expect((await refresh(world, tokens.refresh_token)).status).toBe(400)
    expect(await introspect(world, tokens.access_token)).toEqual({ active: false })
    expect(await world.deputy.deps.grants.isActive(grantId)).toBe(false)
    expect((await auditOf(world, 'grant.revoked'))[0]?.reason).toBe('refresh-token-revoked')
  })

  it('a wrong token_type_hint does not stop the revocation', async () => {
    await revoke({
      token: tokens.refresh_token,
      token_type_hint: 'access_token',
      client_id: world.app.clientId,
    })
    expect((await refresh(world, tokens.refresh_token)).status).toBe(400)
  })

  it("answers 200 for another client's tokens and revokes nothing (§2.1)", async () => {
    for (const token of [tokens.access_token, tokens.refresh_token]) {
      const response = await revoke({ token, client_id: world.otherApp.clientId })
      expect(response.status).toBe(200)
    }
    expect((await introspect(world, tokens.access_token)).active).toBe(true)
    expect((await refresh(world, tokens.refresh_token)).status).toBe(200)
    expect(await auditOf(world, 'token.revoked')).toHaveLength(0)
  })

  it('answers 200 for an unknown or malformed token', async () => {
    for (const token of ['nope', 'a.b.c', 'x'.repeat(300)]) {
      expect((await revoke({ token, client_id: world.app.clientId })).status).toBe(200)
    }
  })

  it('lets a confidential client revoke its own client_credentials token', async () => {
    const agent = basic(world.agent.client.clientId, world.agent.secret)
    const issued = (await (
      await postForm(
        world,
        '/token',
        { grant_type: 'client_credentials', resource: RESOURCE },
        agent,
      )
    ).json()) as Tokens
    expect((await revoke({ token: issued.access_token }, agent)).status).toBe(200)
    expect(await introspect(world, issued.access_token)).toEqual({ active: false })
  })

  it('refuses an unauthenticated request and one without a token', async () => {
    const anonymous = await revoke({ token: tokens.access_token })
    expect(anonymous.status).toBe(400)
    expect(((await anonymous.json()) as { error: string }).error).toBe('invalid_client')
    const missing = await revoke({ client_id: world.app.clientId })
    expect(missing.status).toBe(400)
    expect(((await missing.json()) as { error: string }).error).toBe('invalid_request')
    expect((await introspect(world, tokens.access_token)).active).toBe(true)
  })

  it('does not answer 200 when storage fails (CVE-2020-15223 class)', async () => {
    await world.deputy.deps.db.schema.dropTable('revoked_access_tokens').execute()
    const response = await revoke({ token: tokens.access_token, client_id: world.app.clientId })
    expect(response.status).toBeGreaterThanOrEqual(500)
    expect(((await response.json()) as { error: string }).error).toBe('server_error')
  })
})
