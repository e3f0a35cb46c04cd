import { describe, expect, it } from 'vitest'
import { jwtVerifier } from '../src/index.js'
import { makeKey, mintToken, startAuthorizationServer } from './helpers.js'

const audience = 'https://rs.example/mcp'

async function setup(
  options: { verificationCacheSize?: number; jwksCacheMaxAgeSeconds?: number } = {},
) {
  const server = await startAuthorizationServer()
  const key = await makeKey('k1')
  server.state.keys = [key]
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') }
  const verify = jwtVerifier({
    issuer: server.issuer,
    jwksUri: server.jwksUri,
    audience,
    clockToleranceSeconds: 30,
    jwksCooldownSeconds: 0,
    clock: () => new Date(clock.now),
    ...options,
  })
  const token = (claims: Record<string, unknown> = {}) =>
    mintToken(key, {
      iss: server.issuer,
      aud: audience,
      sub: 'u',
      iat: clock.now / 1000,
      exp: clock.now / 1000 + 60,
      ...claims,
    })
  return { server, key, clock, verify, token }
}

describe('verification cache', () => {
  it('answers a repeated token from the cache with the same identity', async () => {
    const { verify, token } = await setup()
    const t = await token({ roles: ['a'], act: { sub: 'agent' } })
    // The first check loads the JWKS; an entry made while the keys load is not reused.
    await verify(t)
    const first = await verify(t)
    const second = await verify(t)
    expect(first.ok && second.ok).toBe(true)
    if (!first.ok || !second.ok) return
    expect(second.identity).toBe(first.identity)
    // Shared between requests, so nothing in it can be changed.
    expect(Object.isFrozen(first.identity.actor)).toBe(true)
    expect(Object.isFrozen(first.identity.claims.roles)).toBe(true)
  })

  it('stops answering at exp plus the clock tolerance, exactly as a full check would', async () => {
    const { verify, token, clock } = await setup()
    const t = await token()
    expect((await verify(t)).ok).toBe(true)
    clock.now += (60 + 29) * 1000
    expect((await verify(t)).ok).toBe(true)
    clock.now += 1000
    expect(await verify(t)).toEqual({ ok: false, reason: 'expired' })
  })

  it('never answers before nbf minus the tolerance (a clock set back)', async () => {
    const { verify, token, clock } = await setup()
    const t = await token({ nbf: clock.now / 1000 })
    expect((await verify(t)).ok).toBe(true)
    clock.now -= 31_000
    expect(await verify(t)).toEqual({ ok: false, reason: 'not_yet_valid' })
  })

  it('drops every entry when the JWKS is reloaded: a removed key is not honoured from the cache', async () => {
    const { server, verify, token, clock } = await setup({ jwksCacheMaxAgeSeconds: 10 })
    const t = await token({ exp: clock.now / 1000 + 3600 })
    expect((await verify(t)).ok).toBe(true)
    expect((await verify(t)).ok).toBe(true)
    // The issuer removes the key; within the JWKS cache age the key set is what it was.
    const other = await makeKey('k2')
    server.state.keys = [other]
    clock.now += 5_000
    expect((await verify(t)).ok).toBe(true)
    // Past the JWKS cache age the entry is gone and the full check finds the key missing.
    clock.now += 6_000
    expect(await verify(t)).toEqual({ ok: false, reason: 'unknown_key' })
  })

  it('can be turned off', async () => {
    const { verify, token } = await setup({ verificationCacheSize: 0 })
    const t = await token()
    const first = await verify(t)
    const second = await verify(t)
    expect(first.ok && second.ok).toBe(true)
    if (first.ok && second.ok) expect(second.identity).not.toBe(first.identity)
  })

  it('remembers only successes', async () => {
    const { verify, token } = await setup()
    const wrong = await token({ aud: 'https://elsewhere.example/mcp' })
    expect(await verify(wrong)).toEqual({ ok: false, reason: 'audience' })
    expect(await verify(wrong)).toEqual({ ok: false, reason: 'audience' })
  })

  it('stays bounded, evicting the oldest entry', async () => {
    const { verify, token } = await setup({ verificationCacheSize: 2 })
    const tokens = await Promise.all([1, 2, 3, 4].map((n) => token({ sub: `u${n}` })))
    const identities = []
    for (const t of tokens) {
      const check = await verify(t)
      if (!check.ok) throw new Error('expected a valid token')
      identities.push(check.identity)
    }
    const again = async (index: number) => {
      const check = await verify(tokens[index] as string)
      return check.ok ? check.identity : undefined
    }
    expect(await again(3)).toBe(identities[3])
    expect(await again(1)).not.toBe(identities[1])
  })
})
