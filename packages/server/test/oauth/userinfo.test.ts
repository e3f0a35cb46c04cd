import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ADMIN,
  basic,
  createWorld,
  issueCode,
  postForm,
  RESOURCE,
  redeem,
  type World,
} from './token-helpers.js'

describe('UserInfo (OpenID Connect Core §5.3, RFC 6750 §3)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  async function accessToken(scopes: string[]): Promise<string> {
    const { code } = await issueCode(world, { scopes })
    return ((await (await redeem(world, code)).json()) as { access_token: string }).access_token
  }

  const get = (headers: Record<string, string> = {}, query = '') =>
    world.deputy.app.request(`/userinfo${query}`, { headers })

  it('returns sub, and name and email per scope, for an openid token', async () => {
    const token = await accessToken(['openid', 'profile', 'email', 'tools:read'])
    const response = await get({ authorization: `Bearer ${token}` })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(await response.json()).toEqual({
      sub: world.alice.id,
      name: 'Alice Example',
      email: 'alice@example.com',
    })
  })

  it('releases only what the scopes allow', async () => {
    const token = await accessToken(['openid', 'tools:read'])
    expect(await (await get({ authorization: `Bearer ${token}` })).json()).toEqual({
      sub: world.alice.id,
    })
  })

  it('answers a request without a token with a bare Bearer challenge (§3.1)', async () => {
    const response = await get()
    expect(response.status).toBe(401)
    const challenge = response.headers.get('www-authenticate') as string
    expect(challenge).toMatch(/^Bearer /)
    expect(challenge).not.toContain('error=')
  })

  it('does not read a token from the query string', async () => {
    const token = await accessToken(['openid'])
    const response = await get({}, `?access_token=${token}`)
    expect(response.status).toBe(401)
  })

  it('refuses an invalid, expired or revoked token with invalid_token', async () => {
    const bad = await get({ authorization: 'Bearer not.a.token' })
    expect(bad.status).toBe(401)
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"')
    const token = await accessToken(['openid'])
    await postForm(world, '/revoke', { token, client_id: world.app.clientId })
    const revoked = await get({ authorization: `Bearer ${token}` })
    expect(revoked.status).toBe(401)
    const later = await accessToken(['openid'])
    world.clock.advance(world.deputy.config.accessTokenTtlSeconds + 1)
    expect((await get({ authorization: `Bearer ${later}` })).status).toBe(401)
  })

  it('refuses a token of a disabled person', async () => {
    const token = await accessToken(['openid'])
    await world.deputy.deps.users.setStatus('alice@example.com', 'disabled', ADMIN)
    expect((await get({ authorization: `Bearer ${token}` })).status).toBe(401)
  })

  it('refuses a token without openid, and a client_credentials token, with insufficient_scope', async () => {
    const noOpenid = await accessToken(['tools:read'])
    const response = await get({ authorization: `Bearer ${noOpenid}` })
    expect(response.status).toBe(403)
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"')
    const cc = (await (
      await postForm(
        world,
        '/token',
        { grant_type: 'client_credentials', resource: RESOURCE },
        basic(world.agent.client.clientId, world.agent.secret),
      )
    ).json()) as { access_token: string }
    expect((await get({ authorization: `Bearer ${cc.access_token}` })).status).toBe(403)
  })

  it('refuses an ID token used as an access token', async () => {
    const { code } = await issueCode(world, { scopes: ['openid'] })
    const { id_token } = (await (await redeem(world, code)).json()) as { id_token: string }
    expect((await get({ authorization: `Bearer ${id_token}` })).status).toBe(401)
  })
})
