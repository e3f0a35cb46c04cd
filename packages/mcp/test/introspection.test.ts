import { beforeAll, describe, expect, it } from 'vitest'
import { introspectionVerifier, protectMcpServer } from '../src/index.js'
import { connect, startAuthorizationServer, startMcpServer, text } from './helpers.js'

let as: Awaited<ReturnType<typeof startAuthorizationServer>>
const audience = 'https://rs.example/mcp'
let now = Date.parse('2030-01-01T00:00:00Z')
const seconds = () => Math.floor(now / 1000)

beforeAll(async () => {
  as = await startAuthorizationServer()
})

const verifier = (options: { cacheSeconds?: number; issuer?: string } = {}) =>
  introspectionVerifier({
    endpoint: as.introspectionEndpoint,
    clientId: 'rs client',
    clientSecret: 's3cr:et',
    audience,
    clock: () => new Date(now),
    ...options,
  })

describe('RFC 7662 introspection verifier', () => {
  it('authenticates with client_secret_basic and returns the identity of an active token', async () => {
    as.state.active.set('opaque-1', {
      active: true,
      sub: 'ada',
      client_id: 'agent-1',
      scope: 'shop.read shop.buy',
      aud: audience,
      iss: as.issuer,
      exp: seconds() + 600,
      favorite_song: 'Heroes',
    })
    const result = await verifier({ issuer: as.issuer })('opaque-1')
    expect(result.ok && result.identity).toMatchObject({
      sub: 'ada',
      clientId: 'agent-1',
      scopes: ['shop.read', 'shop.buy'],
      claims: { favorite_song: 'Heroes' },
    })
    const call = as.state.introspections.at(-1)
    // RFC 6749 §2.3.1: form-urlencoded id and secret, then Basic.
    expect(call?.authorization).toBe(`Basic ${btoa('rs+client:s3cr%3Aet')}`)
    expect(call?.form.get('token')).toBe('opaque-1')
    expect(call?.form.get('token_type_hint')).toBe('access_token')
  })

  it('caches an answer briefly, then asks again', async () => {
    as.state.active.set('opaque-2', {
      active: true,
      sub: 'ada',
      aud: audience,
      exp: seconds() + 600,
    })
    const verify = verifier({ cacheSeconds: 30 })
    const before = as.state.introspections.length
    expect((await verify('opaque-2')).ok).toBe(true)
    expect((await verify('opaque-2')).ok).toBe(true)
    expect(as.state.introspections.length).toBe(before + 1)
    // Revoked at the AS: seen once the cached answer is older than cacheSeconds.
    as.state.active.set('opaque-2', { active: false })
    now += 31_000
    expect(await verify('opaque-2')).toEqual({ ok: false, reason: 'inactive' })
    expect(as.state.introspections.length).toBe(before + 2)
  })

  it('never reuses an answer past the token’s own expiry', async () => {
    as.state.active.set('opaque-3', { active: true, sub: 'ada', aud: audience, exp: seconds() + 5 })
    const verify = verifier({ cacheSeconds: 300 })
    expect((await verify('opaque-3')).ok).toBe(true)
    now += 60_000
    expect((await verify('opaque-3')).ok).toBe(false)
  })

  it.each([
    ['an inactive token', { active: false }, 'inactive'],
    [
      'a token for another audience',
      { active: true, sub: 'a', aud: 'https://other.example/mcp' },
      'audience',
    ],
    ['a token with no audience', { active: true, sub: 'a' }, 'audience'],
    ['an expired token', { active: true, sub: 'a', aud: audience, exp: 1 }, 'expired'],
    [
      'a refresh token',
      { active: true, sub: 'a', aud: audience, token_type: 'refresh_token' },
      'inactive',
    ],
    [
      'a token from another issuer',
      { active: true, sub: 'a', aud: audience, iss: 'https://evil.example' },
      'issuer',
    ],
  ])('refuses %s', async (_, answer, reason) => {
    const token = `opaque-${reason}-${Math.random()}`
    as.state.active.set(token, { iss: as.issuer, ...answer })
    const result = await verifier({ issuer: as.issuer })(token)
    expect(result.ok).toBe(false)
    expect(!result.ok && result.reason).toBe(reason)
  })

  it('protects an MCP server end to end with opaque tokens', async () => {
    const { resource } = await startMcpServer((resource) => {
      const kit = protectMcpServer({
        resource,
        authorizationServers: [as.issuer],
        verifier: introspectionVerifier({
          endpoint: as.introspectionEndpoint,
          clientId: 'rs',
          clientSecret: 'secret',
          audience: resource,
        }),
        server: { name: 'opaque', version: '1' },
      })
      kit.tool('whoami', { scopes: ['shop.read'] }, {}, (_args, { identity }) => ({
        content: [{ type: 'text', text: identity.sub }],
      }))
      return kit
    })
    as.state.active.set('opaque-e2e', {
      active: true,
      sub: 'grace',
      scope: 'shop.read',
      aud: resource,
      exp: Math.floor(Date.now() / 1000) + 600,
    })
    const client = await connect(resource, 'opaque-e2e', '2026-07-28')
    expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toBe('grace')
    await expect(connect(resource, 'opaque-unknown', '2026-07-28')).rejects.toThrow()
  })
})
