import { describe, expect, it } from 'vitest'
import type { ExchangeOutcome } from '../src/connections/exchange-client.js'
import { connectionsBroker } from '../src/connections/tool-connections.js'
import { dpopReplayCache, introspectionVerifier, jwtVerifier } from '../src/index.js'
import { makeKey, mintToken, startAuthorizationServer } from './helpers.js'

// Issue 14 §3: what requests can put in a protected server's memory stays bounded. Each map keyed
// by request input (a DPoP proof's jti, a bearer token, a person and provider) is flooded with
// distinct keys at its default size, and its bound is read back through its API: only the newest
// `max` keys are still remembered. (packages/server/test/lib/bounded-caches.test.ts: the server's.)

const audience = 'https://rs.example/mcp'
const NOW = Date.parse('2030-01-01T00:00:00Z')
const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

describe('bounded caches in @deputy/mcp', () => {
  it('the DPoP replay cache remembers at most 100,000 jtis by default, dropping the oldest', () => {
    const cache = dpopReplayCache()
    const all = keys(100_500)
    const until = NOW + 60_000
    for (const key of all) expect(cache.remember(key, until, NOW)).toBe(true)
    // A jti still remembered is a replay (and remembering it again changes nothing).
    expect(all.slice(-100_000).every((key) => !cache.remember(key, until, NOW))).toBe(true)
    // The newest of the 500 pushed out is taken as new.
    expect(cache.remember(all[499] as string, until, NOW)).toBe(true)
  })

  it('the introspection verifier keeps at most 10,000 answers by default, the newest', async () => {
    const asked: string[] = []
    const verify = introspectionVerifier({
      endpoint: 'https://as.example/introspect',
      clientId: 'rs',
      clientSecret: 'secret',
      audience,
      clock: () => new Date(NOW),
      // The authorization server's answer: every flooded token is unknown (inactive, cached).
      fetch: async (_url, init) => {
        asked.push(new URLSearchParams(String(init?.body)).get('token') as string)
        return new Response(JSON.stringify({ active: false }), {
          headers: { 'content-type': 'application/json' },
        })
      },
    })
    const tokens = keys(10_500, 'opaque-')
    for (const token of tokens) expect(await verify(token)).toMatchObject({ ok: false })
    expect(asked).toHaveLength(tokens.length)
    for (const token of tokens.slice(-10_000).reverse()) await verify(token)
    expect(asked).toHaveLength(tokens.length)
    await verify(tokens[0] as string)
    expect(asked.at(-1)).toBe(tokens[0])
  })

  it('the JWT verifier keeps at most 1,000 verifications by default, the newest', async () => {
    const server = await startAuthorizationServer()
    const key = await makeKey('k1')
    server.state.keys = [key]
    const verify = jwtVerifier({ issuer: server.issuer, jwksUri: server.jwksUri, audience })
    const tokens = await Promise.all(
      keys(1_001, 'u').map((sub) => mintToken(key, { iss: server.issuer, aud: audience, sub })),
    )
    const identity = async (token: string) => {
      const check = await verify(token)
      if (!check.ok) throw new Error(`expected a valid token, got ${check.reason}`)
      return check.identity
    }
    await identity(tokens[0] as string) // loads the JWKS: an entry made meanwhile is not kept
    const first = []
    for (const token of tokens) first.push(await identity(token))
    // A cached verification answers with the very same identity object; a new one makes another.
    for (let i = tokens.length - 1; i >= 1; i--) {
      expect(await identity(tokens[i] as string)).toBe(first[i])
    }
    expect(await identity(tokens[0] as string)).not.toBe(first[0])
  })

  it("a tool's connected-account tokens are kept for at most maxCached person/provider pairs", async () => {
    const exchanged: string[] = []
    const broker = connectionsBroker({
      maxCached: 1000,
      now: () => NOW,
      exchange: async ({ provider }): Promise<ExchangeOutcome> => {
        exchanged.push(provider)
        return {
          status: 'issued',
          token: { accessToken: `at-${provider}`, expiresAt: NOW + 3600_000, scopes: [] },
        }
      },
    })
    const people = keys(3_000, 'person-')
    const token = (sub: string) => broker.forCaller(sub, `subject-${sub}`).token(`github-${sub}`)
    for (const sub of people) await token(sub)
    expect(exchanged).toHaveLength(people.length)
    for (const sub of people.slice(-1000).reverse()) await token(sub)
    expect(exchanged).toHaveLength(people.length)
    await token(people[0] as string)
    expect(exchanged).toHaveLength(people.length + 1)
  })
})
